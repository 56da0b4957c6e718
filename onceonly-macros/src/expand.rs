//! Code generation: the user's function, same signature, with a body that runs the original
//! one through `client.ai().run_fn(key, ..)`.
//!
//! The item is split into its header (attributes, visibility, signature) and its body; the
//! header is re-emitted token for token and the body is kept as tokens too, so a body that
//! does not parse is reported by rustc at the right place. When the macro itself finds a
//! mistake, it emits the original function unchanged next to the error.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, GenericArgument, LitStr, PathArguments, ReturnType, Signature, Type};

use crate::attr::{Args, Errors, Kind};
use crate::key::{Binding, bindings, has_impl_trait};

/// Expands `#[idempotent(args)]` / `#[idempotent_ai(args)]` on `item`.
pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(kind, args, item.clone()) {
        Ok(expanded) => expanded,
        Err(e) => {
            let error = e.to_compile_error();
            quote!(#error #item)
        }
    }
}

/// The parts of the function we look at; the tokens themselves are re-emitted as they came.
struct Header {
    sig: Signature,
}

impl Parse for Header {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let _attrs = input.call(Attribute::parse_outer)?;
        let _vis: syn::Visibility = input.parse()?;
        let sig: Signature = input.parse()?;
        Ok(Header { sig })
    }
}

/// The declared return type, taken apart as far as the tokens allow.
struct Ret {
    /// The whole type, as written.
    ty: Type,
    /// `T` of `Result<T, E>` (or of `io::Result<T>`).
    ok: Option<Type>,
    /// `E` of `Result<T, E>`.
    err: Option<Type>,
}

fn try_expand(kind: Kind, args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let (header, body) = split_body(&item)?;
    let Header { sig } = syn::parse2(header.clone())?;

    let mut errors = Errors::default();
    let args = Args::parse(kind, args).map_err(|e| errors.push(e)).ok();
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span,
            format!(
                "{} works on `async fn` only: write `async fn {}`",
                kind.name(),
                sig.ident
            ),
        ));
    }
    let ret = return_type(kind, &sig).map_err(|e| errors.push(e)).ok();
    let keyed = bindings(&sig);
    if let Some(args) = &args {
        check_args(kind, args, &sig, &keyed, &mut errors);
    }
    if let Some(e) = errors.take() {
        return Err(e);
    }
    let (Some(args), Some(ret)) = (args, ret) else {
        return Err(syn::Error::new(Span::call_site(), "invalid attribute"));
    };
    Ok(generate(kind, &args, &sig, &ret, &keyed, header, body))
}

/// Splits the item into the tokens before the body and the body (a brace group).
fn split_body(item: &TokenStream) -> syn::Result<(TokenStream, TokenTree)> {
    let mut tokens: Vec<TokenTree> = item.clone().into_iter().collect();
    match tokens.pop() {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => {
            Ok((tokens.into_iter().collect(), TokenTree::Group(g)))
        }
        Some(last) => Err(syn::Error::new(
            last.span(),
            "expected a function with a body: put the attribute on the function's definition \
             (in an `impl` block for trait methods), not on a declaration",
        )),
        None => Err(syn::Error::new(
            Span::call_site(),
            "expected an `async fn` after the attribute",
        )),
    }
}

fn return_type(kind: Kind, sig: &Signature) -> syn::Result<Ret> {
    let ReturnType::Type(_, ty) = &sig.output else {
        return Err(syn::Error::new(
            sig.paren_token.span.close(),
            format!(
                "{} needs a return type `Result<T, E>`: the `Ok` value is stored and replayed, \
                 an `Err` releases the key",
                kind.name()
            ),
        ));
    };
    let mut inner: &Type = ty;
    while let Type::Paren(p) = inner {
        inner = &p.elem;
    }
    let not_result = || {
        syn::Error::new_spanned(
            ty,
            format!(
                "{} needs a return type `Result<T, E>` (or an alias whose name ends in \
                 `Result`), found `{}`",
                kind.name(),
                ty.to_token_stream()
            ),
        )
    };
    let Type::Path(path) = inner else {
        return Err(not_result());
    };
    let Some(last) = path.path.segments.last() else {
        return Err(not_result());
    };
    if !last.ident.unraw().to_string().ends_with("Result") {
        return Err(not_result());
    }
    let mut types = match &last.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .into_iter(),
        PathArguments::None => Vec::new().into_iter(),
        PathArguments::Parenthesized(_) => return Err(not_result()),
    };
    Ok(Ret {
        ty: (**ty).clone(),
        ok: types.next(),
        err: types.next(),
    })
}

fn check_args(kind: Kind, args: &Args, sig: &Signature, keyed: &[Binding], errors: &mut Errors) {
    if kind == Kind::IdempotentAi && args.key.is_none() {
        errors.push(syn::Error::new(
            Span::call_site(),
            "#[idempotent_ai] needs `key = <expression>`, evaluated with the arguments in \
             scope, for example `#[idempotent_ai(key = format!(\"welcome:{user_id}\"))]`",
        ));
    }
    let gov = &args.governance;
    match (&gov.agent, &gov.tool) {
        (Some(_), Some(_)) => {}
        (Some(agent), None) => errors.push(syn::Error::new(
            agent.name.span(),
            "`agent` needs `tool` too: a governed call names the agent and the tool it calls, \
             for example `agent = \"support-bot\", tool = \"send_email\"`",
        )),
        (None, Some(tool)) => errors.push(syn::Error::new(
            tool.name.span(),
            "`tool` needs `agent` too: a governed call names the agent and the tool it calls",
        )),
        (None, None) => {
            if let Some(spend) = &gov.spend_usd {
                errors.push(syn::Error::new(
                    spend.name.span(),
                    "`spend_usd` applies to governed calls: add `agent = .., tool = ..`",
                ));
            }
        }
    }
    if let Some(skip) = &args.skip {
        let known: Vec<&str> = keyed.iter().map(|b| b.name.as_str()).collect();
        for (i, name) in skip.value.iter().enumerate() {
            let text = name.unraw().to_string();
            if skip.value[..i].iter().any(|n| n.unraw() == text) {
                errors.push(syn::Error::new(
                    name.span(),
                    format!("`{text}` is skipped twice"),
                ));
            } else if text == "self" {
                errors.push(syn::Error::new(
                    name.span(),
                    "the receiver is never part of the key: no need to skip `self`",
                ));
            } else if !known.contains(&text.as_str()) {
                let list = if known.is_empty() {
                    "it has no arguments in its key".to_owned()
                } else {
                    format!("its key arguments are: {}", known.join(", "))
                };
                errors.push(syn::Error::new(
                    name.span(),
                    format!(
                        "`skip({text})`: `{}` has no argument named `{text}`; {list}",
                        sig.ident
                    ),
                ));
            }
        }
    }
}

fn generate(
    kind: Kind,
    args: &Args,
    sig: &Signature,
    ret: &Ret,
    keyed: &[Binding],
    header: TokenStream,
    body: TokenTree,
) -> TokenStream {
    let rt = match &args.krate {
        Some(k) => k.value.to_token_stream(),
        None => quote!(::onceonly_runtime),
    };
    let checks = signature_checks(&rt, ret);
    let client = client(&rt, args);
    let key = match kind {
        Kind::Idempotent => args_key(&rt, args, sig, keyed),
        Kind::IdempotentAi => match &args.key {
            Some(key) => {
                let expr = &key.value;
                quote_spanned!(expr.span()=> #rt::__private::key(#expr))
            }
            None => quote!(::core::compile_error!("missing `key`")),
        },
    };
    let (option_values, setters) = setters(&rt, args);
    let fake_return = fake_return(ret);
    let user_body = quote!(async move { #fake_return #body });
    let ai = quote!(#rt::OnceOnly::ai(&__onceonly_client));

    let run = match &args.fail_open {
        None => quote! {
            #rt::__private::run(
                #ai.run_fn(__onceonly_key, move || #user_body)
                    #setters
            )
            .await
        },
        Some(fail_open) => {
            let enabled = &fail_open.value;
            quote! {
                let __onceonly_fail_open: bool = #enabled;
                let __onceonly_key_for_log = ::core::clone::Clone::clone(&__onceonly_key);
                let mut __onceonly_body = ::core::option::Option::Some(#user_body);
                let __onceonly_outcome = #rt::__private::run(
                    #ai.run_fn(__onceonly_key, || #rt::__private::take_body(&mut __onceonly_body))
                        #setters
                )
                .await;
                #rt::__private::finish_fail_open(
                    __onceonly_fail_open,
                    &__onceonly_key_for_log,
                    __onceonly_outcome,
                    __onceonly_body,
                )
                .await
            }
        }
    };

    let stmts = quote! {
        #checks
        let __onceonly_client: #rt::OnceOnly = #client;
        let __onceonly_key: ::std::string::String = #key;
        #option_values
        #run
    };
    // The new body keeps the span of the original braces, so the item still spans the user's
    // code only (lints such as `dead_code` look at it).
    let mut new_body = Group::new(Delimiter::Brace, stmts);
    new_body.set_span(body.span());
    quote!(#header #new_body)
}

/// Hidden calls that fail to compile, on the user's own tokens, when the return type cannot
/// be stored and replayed or its error type cannot take runtime errors.
fn signature_checks(rt: &TokenStream, ret: &Ret) -> TokenStream {
    let mut out = TokenStream::new();
    match (&ret.ok, &ret.err) {
        (None, _) => {
            let ty = &ret.ty;
            if !has_impl_trait(ty) {
                out.extend(quote!(#rt::__private::assert_result::<#ty>();));
            }
        }
        (Some(ok), err) => {
            if !has_impl_trait(ok) {
                out.extend(quote!(#rt::__private::assert_stored::<#ok>();));
            }
            if let Some(err) = err.as_ref().filter(|e| !has_impl_trait(e)) {
                out.extend(quote!(#rt::__private::assert_error::<#err>();));
            }
        }
    }
    out
}

/// `OnceOnly::global()` unless `client = ..` is given; a global that cannot be built is
/// returned as the function's error.
fn client(rt: &TokenStream, args: &Args) -> TokenStream {
    match &args.client {
        Some(c) => {
            let expr = &c.value;
            quote_spanned!(expr.span()=> #rt::__private::client(#expr))
        }
        None => quote! {
            match #rt::OnceOnly::global() {
                ::core::result::Result::Ok(__onceonly_client) => __onceonly_client,
                ::core::result::Result::Err(__onceonly_error) => {
                    return ::core::result::Result::Err(::core::convert::From::from(__onceonly_error));
                }
            }
        },
    }
}

/// The `#[idempotent]` key: prefix, version and the canonical JSON of the key arguments.
fn args_key(rt: &TokenStream, args: &Args, sig: &Signature, keyed: &[Binding]) -> TokenStream {
    let prefix = match &args.key_prefix {
        Some(p) => p.value.to_token_stream(),
        None => {
            let name = LitStr::new(&sig.ident.unraw().to_string(), sig.ident.span());
            quote!(::core::concat!(::core::module_path!(), "::", #name))
        }
    };
    let version = match &args.version {
        Some(v) => v.value.clone(),
        None => LitStr::new("v1", Span::call_site()),
    };
    let skipped = |b: &Binding| {
        args.skip
            .as_ref()
            .is_some_and(|s| s.value.iter().any(|n| n.unraw() == b.name))
    };
    let adds: Vec<TokenStream> = keyed
        .iter()
        .filter(|b| !skipped(b))
        .map(|b| {
            let name = LitStr::new(&b.name, b.ident.span());
            match &b.ty {
                // The turbofish carries the user's type tokens: a type that is not
                // `Serialize` is underlined in the signature.
                Some(ty) if !has_impl_trait(ty) => {
                    let ident = &b.ident;
                    quote!(__onceonly_args.arg::<#ty>(#name, &#ident);)
                }
                _ => {
                    let ident = &b.ident;
                    quote_spanned!(b.ident.span()=> __onceonly_args.arg(#name, &#ident);)
                }
            }
        })
        .collect();
    let mutability = if adds.is_empty() {
        quote!()
    } else {
        quote!(mut)
    };
    quote! {
        {
            let #mutability __onceonly_args = #rt::__private::ArgsKey::new(#version, #prefix);
            #(#adds)*
            match __onceonly_args.finish() {
                ::core::result::Result::Ok(__onceonly_key) => __onceonly_key,
                ::core::result::Result::Err(__onceonly_error) => {
                    return ::core::result::Result::Err(::core::convert::From::from(__onceonly_error));
                }
            }
        }
    }
}

/// The `run_fn` builder calls for the options that were given.
///
/// Returns the option values bound to locals (statements that run before the body's closure
/// is made, so an option may use an argument the body then moves) and the builder calls that
/// pass them.
fn setters(rt: &TokenStream, args: &Args) -> (TokenStream, TokenStream) {
    let mut values = TokenStream::new();
    let mut out = TokenStream::new();
    let mut call = |method: &str, expr: TokenStream, span: Span| {
        let local = quote::format_ident!("__onceonly_{}", method, span = span);
        let method = syn::Ident::new(method, span);
        values.extend(quote_spanned!(span=> let #local = #expr;));
        out.extend(quote_spanned!(span=> .#method(#local)));
    };
    let simple = [
        ("ttl", &args.ttl),
        ("wait_on_conflict", &args.wait_on_conflict),
        ("timeout", &args.timeout),
        ("error_code", &args.error_code),
        ("terminal_failures", &args.terminal_failures),
    ];
    for (method, opt) in simple {
        if let Some(opt) = opt {
            let expr = &opt.value;
            call(method, expr.to_token_stream(), expr.span());
        }
    }
    let gov = &args.governance;
    if let Some(spend) = &gov.spend_usd {
        let spend = &spend.value;
        call("spend_usd", spend.to_token_stream(), spend.span());
    }
    match (&args.metadata, &args.run_id) {
        (None, None) => {}
        (Some(m), None) => {
            let m = &m.value;
            call("metadata", m.to_token_stream(), m.span());
        }
        (m, Some(run_id)) => {
            let run_id = &run_id.value;
            let base = match m {
                Some(m) => m.value.to_token_stream(),
                None => quote!(#rt::JsonMap::new()),
            };
            call(
                "metadata",
                quote!(#rt::__private::with_run_id(#base, #run_id)),
                run_id.span(),
            );
        }
    }
    if let (Some(agent), Some(tool)) = (&gov.agent, &gov.tool) {
        let (agent, tool) = (&agent.value, &tool.value);
        let span = agent.span();
        values.extend(quote_spanned!(span=> let __onceonly_governed = (#agent, #tool);));
        out.extend(quote_spanned!(span=>
            .governed(__onceonly_governed.0, __onceonly_governed.1)
        ));
    }
    (values, out)
}

/// An unreachable `return` of the declared type at the top of the body: it tells inference
/// what `?` and `return` inside the body convert to, and a body of the wrong type is
/// reported against the declared return type.
fn fake_return(ret: &Ret) -> TokenStream {
    let ty = &ret.ty;
    if has_impl_trait(ty) {
        return TokenStream::new();
    }
    quote_spanned! {ty.span()=>
        #[allow(
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::needless_return,
            clippy::let_unit_value
        )]
        if false {
            let __onceonly_declared_return: #ty = loop {};
            return __onceonly_declared_return;
        }
    }
}
