//! Expansion snapshots: what each macro turns a function into, pretty-printed. Review a
//! changed snapshot like code: it is the code every user compiles.

use proc_macro2::TokenStream;
use quote::quote;

use crate::attr::Kind;
use crate::expand::expand;

fn pretty(tokens: TokenStream) -> String {
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(e) => panic!("the expansion does not parse ({e}):\n{tokens}"),
    }
}

fn idempotent(args: TokenStream, item: TokenStream) -> String {
    pretty(expand(Kind::Idempotent, args, item))
}

fn idempotent_ai(args: TokenStream, item: TokenStream) -> String {
    pretty(expand(Kind::IdempotentAi, args, item))
}

#[test]
fn idempotent_defaults() {
    insta::assert_snapshot!(idempotent(
        quote!(),
        quote! {
            /// Charges an order once.
            pub async fn charge(order_id: &str, cents: u64) -> Result<Receipt, PayError> {
                stripe::charge(order_id, cents).await
            }
        }
    ));
}

#[test]
fn idempotent_every_option() {
    insta::assert_snapshot!(idempotent(
        quote!(
            key_prefix = "billing::charge",
            version = "v2",
            skip(trace_id),
            client = &self.client,
            ttl = Duration::from_secs(3600),
            wait_on_conflict = false,
            timeout = Duration::from_secs(5),
            error_code = "card_declined",
            terminal_failures,
            metadata = meta(),
            run_id = run.id,
            crate = ::my_rt
        ),
        quote! {
            async fn charge(&self, order_id: &str, trace_id: Uuid) -> io::Result<Receipt> {
                self.gateway.charge(order_id).await
            }
        }
    ));
}

#[test]
fn idempotent_generic_destructured_alias() {
    insta::assert_snapshot!(idempotent(
        quote!(),
        quote! {
            #[inline]
            async fn area<T: Serialize>(Rect { w, h, .. }: Rect, extra: impl Serialize, tag: T) -> AreaResult
            where
                T: Send,
            {
                Ok(w * h)
            }
        }
    ));
}

#[test]
fn idempotent_ai_key_expression() {
    insta::assert_snapshot!(idempotent_ai(
        quote!(key = format!("welcome:email:{user_id}")),
        quote! {
            async fn send_welcome_email(user_id: &str) -> Result<Sent, MailError> {
                mailer().send(user_id).await
            }
        }
    ));
}

#[test]
fn idempotent_ai_fail_open() {
    insta::assert_snapshot!(idempotent_ai(
        quote!(
            key = format!("sync:{id}"),
            client = client,
            fail_open = true
        ),
        quote! {
            async fn sync(client: &OnceOnly, id: u64) -> Result<(), Error> {
                Ok(())
            }
        }
    ));
}

#[test]
fn an_error_keeps_the_original_function() {
    insta::assert_snapshot!(idempotent_ai(
        quote!(ttl = 5, ttl = 6),
        quote! {
            /// Kept as written.
            async fn send(user_id: &str) -> Result<Sent, MailError> {
                mailer().send(user_id).await
            }
        }
    ));
}
