//! Typed listing of a session type's live sessions: pages ([`Sessions::list_page`]) or
//! one at a time ([`Sessions::list`]).

use std::collections::VecDeque;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Meta, SessionError, Sessions, header};
use crate::SessionKey;

/// The largest page [`Sessions::list_page`] accepts.
pub const MAX_LIST_PAGE: usize = 10_000;
const DEFAULT_LIST_PAGE: usize = 256;

/// One live session of a listing.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Listed<T> {
    /// Its key.
    pub key: SessionKey,
    /// Its value, decoded and migrated (in memory; nothing is written back).
    pub value: T,
    /// Its times and version.
    pub meta: Meta,
}

/// One page of a typed listing.
#[derive(Debug)]
#[non_exhaustive]
pub struct ListPage<T> {
    /// The live sessions of the page, in key order.
    pub sessions: Vec<Listed<T>>,
    /// Records of the page that could not be listed (bad bytes, failed migration, a
    /// newer schema), each with its error; the listing goes on past them.
    pub skipped: Vec<(SessionKey, SessionError)>,
    /// Pass to the next call to continue; `None` when the listing is complete.
    pub next: Option<String>,
}

/// A listed session, or a record that could not be listed.
type Item<T> = Result<Listed<T>, (SessionKey, SessionError)>;

fn check_limit(limit: usize) -> Result<(), SessionError> {
    if limit == 0 || limit > MAX_LIST_PAGE {
        return Err(SessionError::Config(format!("a list page holds 1 to {MAX_LIST_PAGE} sessions, not {limit}")));
    }
    Ok(())
}

impl<T> Sessions<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Up to `limit` stored records of this namespace whose key sorts after `cursor`
    /// (`None`: from the start), decoded. Expired sessions are left out, so a page may
    /// hold fewer than `limit` even when `next` is `Some`. Reads only: no decode policy
    /// runs, nothing is written, no TTL is refreshed.
    ///
    /// # Errors
    ///
    /// [`SessionError::Config`] for a `limit` of 0 or over [`MAX_LIST_PAGE`]; store
    /// errors (a bad cursor among them). A record that does not decode is no error of
    /// the call: it is reported in [`ListPage::skipped`].
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{store::memory::MemoryStore, Scope, SessionError, SessionKey, Sessions};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let counters = Sessions::<u64>::builder(MemoryStore::new()).namespace("count").build()?;
    /// for chat in 1..=5 {
    ///     let key = SessionKey::new(counters.namespace().clone(), Scope::Chat(chat));
    ///     counters.set(&key, &(chat as u64 * 10)).await?;
    /// }
    /// let mut total = 0;
    /// let mut cursor = None;
    /// loop {
    ///     let page = counters.list_page(cursor.as_deref(), 2).await?;
    ///     total += page.sessions.iter().map(|s| s.value).sum::<u64>();
    ///     match page.next { Some(next) => cursor = Some(next), None => break }
    /// }
    /// assert_eq!(total, 150);
    /// # Ok::<(), SessionError>(())
    /// # }).unwrap();
    /// ```
    pub async fn list_page(&self, cursor: Option<&str>, limit: usize) -> Result<ListPage<T>, SessionError> {
        check_limit(limit)?;
        let (items, next) = self.list_items(cursor, limit).await?;
        let mut out = ListPage { sessions: Vec::with_capacity(items.len()), skipped: Vec::new(), next };
        for item in items {
            match item {
                Ok(listed) => out.sessions.push(listed),
                Err(skipped) => out.skipped.push(skipped),
            }
        }
        Ok(out)
    }

    /// One page, in key order: listed sessions and skipped records.
    async fn list_items(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Item<T>>, Option<String>), SessionError> {
        let now = self.inner.clock.now();
        let page = self.inner.store.scan(&self.inner.namespace, cursor, limit, now).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for (key, record) in page.items {
            let plain = match self.open_value(&key, &record.value) {
                Ok(plain) => plain,
                Err(e) => {
                    items.push(Err((key, e)));
                    continue;
                }
            };
            let own = match header::split(&plain) {
                Ok((own, _)) => own,
                Err(source) => {
                    let e = SessionError::Decode { key: key.to_string(), source };
                    items.push(Err((key, e)));
                    continue;
                }
            };
            let meta = self.meta_of(&record, own);
            if now.is_expired(meta.expires_at) {
                continue;
            }
            let decoded =
                self.check_schema(&key, &record).and_then(|()| self.decode(&key, record.schema_version, &plain));
            match decoded {
                Ok(value) => items.push(Ok(Listed { key, value, meta })),
                Err(e) => items.push(Err((key, e))),
            }
        }
        Ok((items, page.next))
    }

    /// Every live session of this namespace, one at a time, fetched a page at a time:
    /// for broadcasts and exports. See [`SessionList`].
    ///
    /// # Examples
    ///
    /// ```
    /// use bot_sessions::{store::memory::MemoryStore, Scope, SessionError, SessionKey, Sessions};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let subscribers = Sessions::<bool>::builder(MemoryStore::new()).namespace("subs").build()?;
    /// for user in [3, 1, 2] {
    ///     subscribers.set(&SessionKey::new(subscribers.namespace().clone(), Scope::User(user)), &true).await?;
    /// }
    /// let mut list = subscribers.list();
    /// let mut users = Vec::new();
    /// while let Some(item) = list.next().await {
    ///     match item {
    ///         Ok(s) => users.push(s.key.user_id()),
    ///         Err(e) => eprintln!("skipped: {e}"), // one bad record; the listing goes on
    ///     }
    /// }
    /// assert_eq!(users, [Some(1), Some(2), Some(3)]);
    /// # Ok::<(), SessionError>(())
    /// # }).unwrap();
    /// ```
    pub fn list(&self) -> SessionList<T> {
        SessionList {
            sessions: self.clone(),
            cursor: None,
            page_size: DEFAULT_LIST_PAGE,
            buffer: VecDeque::new(),
            done: false,
        }
    }
}

/// A listing of live sessions, one at a time (see [`Sessions::list`]); an async
/// iterator without a dependency on `futures`.
#[must_use = "a listing does nothing until next() is called"]
pub struct SessionList<T> {
    sessions: Sessions<T>,
    cursor: Option<String>,
    page_size: usize,
    buffer: VecDeque<Result<Listed<T>, SessionError>>,
    done: bool,
}

impl<T> std::fmt::Debug for SessionList<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionList")
            .field("namespace", &self.sessions.inner.namespace)
            .field("cursor", &self.cursor)
            .field("page_size", &self.page_size)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<T> SessionList<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Sessions fetched per store round trip (default 256; clamped to
    /// 1..=[`MAX_LIST_PAGE`]).
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n.clamp(1, MAX_LIST_PAGE);
        self
    }

    /// The next session; `None` when the listing is complete.
    ///
    /// `Err` is either one record that could not be listed
    /// ([`ListPage::skipped`]; the next call goes on past it) or a store error fetching
    /// a page (the next call fetches that page again).
    pub async fn next(&mut self) -> Option<Result<Listed<T>, SessionError>> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            match self.sessions.list_items(self.cursor.as_deref(), self.page_size).await {
                Ok((items, next)) => {
                    self.buffer.extend(items.into_iter().map(|item| item.map_err(|(_, e)| e)));
                    match next {
                        Some(next) => self.cursor = Some(next),
                        None => self.done = true,
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
