//! An interactive session driven by a select menu, a button and a modal, rendered by
//! a tiny transport that prints what a user would see and plays the user's part.
//!
//! ```sh
//! cargo run -p bot-sessions --example order_form
//! ```

use std::time::Duration;

use bot_sessions::interactive::*;
use bot_sessions::store::BoxError;
use bot_sessions::{Context, Ttl};

/// Pick a size (select menu), then "Address" (button) opens a form (modal) whose submit
/// places the order.
struct Order;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Draft {
    size: Option<String>,
}

impl Interactive for Order {
    type State = Draft;
    type Args = ();
    type Output = String;

    async fn start(&self, cx: &mut StartCx<'_>, _: ()) -> Result<Draft, BoxError> {
        let size = Select::new(cx.encode(&cx.custom_id("size"))?)
            .placeholder("size")
            .option(SelectOption::new("Small", "s"))
            .option(SelectOption::new("Large", "l"));
        let address = Button::new("Address", cx.encode(&cx.custom_id("address"))?);
        cx.reply(Reply::message(View::text("Your order").row([size]).row([address])));
        Ok(Draft::default())
    }

    async fn on_select(&self, cx: &mut UpdateCx<'_>, draft: &mut Draft) -> Result<Step<String>, BoxError> {
        draft.size = cx.values().first().cloned();
        cx.reply(Reply::notice(format!("size {}", draft.size.as_deref().unwrap_or("?"))));
        Ok(Step::refresh())
    }

    async fn on_button(&self, cx: &mut UpdateCx<'_>, _: &mut Draft) -> Result<Step<String>, BoxError> {
        let form = Modal::new(cx.encode(&cx.custom_id("form"))?, "Deliver to")
            .field(TextField::new("name", "Name"))
            .field(TextField::new("street", "Street").paragraph());
        cx.reply(Reply::modal(form));
        Ok(Step::keep())
    }

    async fn on_modal(&self, cx: &mut UpdateCx<'_>, draft: &mut Draft) -> Result<Step<String>, BoxError> {
        let (name, street) = (cx.field("name").unwrap_or("?"), cx.field("street").unwrap_or("?"));
        Ok(Step::Finish(format!("{} for {name}, {street}", draft.size.as_deref().unwrap_or("s"))))
    }

    async fn end(&self, cx: &mut EndCx<'_>, _: Draft) -> Result<Option<String>, BoxError> {
        cx.reply(Reply::close(format!("order {:?}", cx.reason())));
        Ok(None)
    }

    fn ttl(&self) -> Ttl {
        Ttl::idle(Duration::from_secs(600))
    }
}

/// The tiny transport: shows a reply, and finds the custom id of a component in it.
fn show(reply: &Reply) {
    for line in reply.to_string().lines() {
        println!("  | {line}");
    }
}

fn id_of(reply: &Reply, label_or_placeholder: &str) -> String {
    let message = reply.as_message().expect("a message");
    message
        .rows
        .iter()
        .flatten()
        .find_map(|w| match w {
            Widget::Button(b) if b.label == label_or_placeholder => Some(b.custom_id.clone()),
            Widget::Select(s) if s.placeholder.as_deref() == Some(label_or_placeholder) => Some(s.custom_id.clone()),
            _ => None,
        })
        .expect("the component is in the message")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = bot_sessions::store::open("memory://").await?;
    let codec = CustomIdCodec::new("o", Target::Discord)?
        .signed(SigningKeys::new([b"a secret of 32 bytes or more....".as_slice()])?);
    let manager = Manager::builder(store, codec).build()?;
    let orders = manager.register("order", Order)?;
    let ada = Context::new().chat(1).user(42);

    println!("ada: /order");
    let started = manager.start(&orders, &ada, ()).await?;
    let menu = started.reply.clone().expect("start replies");
    show(&menu);

    println!("ada picks Large");
    let routed = manager.handle(&ada.clone().select(id_of(&menu, "size"), ["l"])).await?;
    show(&routed.reply.expect("a notice"));

    println!("ada clicks Address");
    let routed = manager.handle(&ada.clone().button(id_of(&menu, "Address"))).await?;
    let Some(Reply::Modal(form)) = routed.reply else { return Err("expected a modal".into()) };
    show(&Reply::Modal(form.clone()));

    println!("ada submits the form");
    let submit = ada.clone().modal_submit(form.custom_id, [("name", "Ada"), ("street", "12 St James's Square")]);
    let routed = manager.handle(&submit).await?;
    show(&routed.answer(|_| None).expect("the end's reply"));

    let ended = started.handle.await?;
    println!("result: {:?} ({:?})", ended.result, ended.reason);
    Ok(())
}
