//! Parsing of the attribute arguments: `#[idempotent(ttl = .., skip(a, b))]`.
//!
//! Every option is a typed Rust expression (or a string literal where the value is part of the
//! key and must be known at compile time). Errors are spanned on the offending token: an
//! unknown option on its name (with the list of valid ones), a repeated option on its second
//! occurrence, a value of the wrong kind on the value.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Path, Token, parenthesized};

/// Which macro is being expanded; decides which options exist.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `#[idempotent]`: the key is derived from the arguments.
    Idempotent,
    /// `#[idempotent_ai(key = ..)]`: the key is an expression.
    IdempotentAi,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Idempotent => "#[idempotent]",
            Kind::IdempotentAi => "#[idempotent_ai]",
        }
    }

    /// Whether this macro knows option `name`: a valid one, or a governed-call option that
    /// is parsed to be rejected with a precise message.
    fn accepts(self, name: &str) -> bool {
        self.valid().contains(&name)
            || (self == Kind::IdempotentAi && matches!(name, "agent" | "tool" | "spend_usd"))
    }

    /// The options this macro accepts, in the order the docs list them.
    fn valid(self) -> &'static [&'static str] {
        match self {
            Kind::Idempotent => &[
                "key_prefix",
                "version",
                "skip",
                "client",
                "ttl",
                "wait_on_conflict",
                "timeout",
                "error_code",
                "terminal_failures",
                "fail_open",
                "metadata",
                "run_id",
                "crate",
            ],
            Kind::IdempotentAi => &[
                "key",
                "client",
                "ttl",
                "wait_on_conflict",
                "timeout",
                "error_code",
                "terminal_failures",
                "fail_open",
                "metadata",
                "run_id",
                "crate",
            ],
        }
    }
}

/// A parsed option value together with the span of its name.
#[derive(Clone)]
pub(crate) struct Opt<T> {
    pub(crate) name: Ident,
    pub(crate) value: T,
}

/// Governed-call options (`agent`, `tool`, `spend_usd`): the call goes through the agent's
/// policy together with acquiring its key.
#[derive(Default)]
pub(crate) struct Governance {
    pub(crate) agent: Option<Opt<Expr>>,
    pub(crate) tool: Option<Opt<Expr>>,
    pub(crate) spend_usd: Option<Opt<Expr>>,
}

/// All options of both macros; [`Args::parse`] only fills those valid for the macro.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) key: Option<Opt<Expr>>,
    pub(crate) key_prefix: Option<Opt<LitStr>>,
    pub(crate) version: Option<Opt<LitStr>>,
    pub(crate) skip: Option<Opt<Vec<Ident>>>,
    pub(crate) client: Option<Opt<Expr>>,
    pub(crate) ttl: Option<Opt<Expr>>,
    pub(crate) wait_on_conflict: Option<Opt<Expr>>,
    pub(crate) timeout: Option<Opt<Expr>>,
    pub(crate) error_code: Option<Opt<Expr>>,
    pub(crate) terminal_failures: Option<Opt<Expr>>,
    pub(crate) fail_open: Option<Opt<Expr>>,
    pub(crate) metadata: Option<Opt<Expr>>,
    pub(crate) run_id: Option<Opt<Expr>>,
    pub(crate) krate: Option<Opt<Path>>,
    pub(crate) governance: Governance,
}

/// Collects errors so that one expansion reports all of them.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub(crate) fn take(self) -> Option<syn::Error> {
        self.0
    }
}

impl Args {
    /// Parses the attribute's arguments for `kind`. Parsing goes on after an unknown or
    /// repeated option, so all such mistakes are reported at once; a syntax error stops it.
    pub(crate) fn parse(kind: Kind, tokens: TokenStream) -> Result<Args, syn::Error> {
        let mut errors = Errors::default();
        let args =
            (|input: ParseStream<'_>| Args::parse_list(kind, input, &mut errors)).parse2(tokens)?;
        match errors.take() {
            Some(e) => Err(e),
            None => Ok(args),
        }
    }

    fn parse_list(kind: Kind, input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<Args> {
        let mut args = Args::default();
        while !input.is_empty() {
            let name = input.call(Ident::parse_any)?;
            let text = name.unraw().to_string();
            if !kind.accepts(&text) {
                errors.push(unknown(kind, &name, &text));
                skip_value(input)?;
            } else if args.is_set(&text) {
                errors.push(syn::Error::new(
                    name.span(),
                    format!("option `{text}` is given twice"),
                ));
                skip_value(input)?;
            } else {
                args.parse_value(&text, &name, input)?;
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }

    fn is_set(&self, text: &str) -> bool {
        match text {
            "key" => self.key.is_some(),
            "key_prefix" => self.key_prefix.is_some(),
            "version" => self.version.is_some(),
            "skip" => self.skip.is_some(),
            "client" => self.client.is_some(),
            "ttl" => self.ttl.is_some(),
            "wait_on_conflict" => self.wait_on_conflict.is_some(),
            "timeout" => self.timeout.is_some(),
            "error_code" => self.error_code.is_some(),
            "terminal_failures" => self.terminal_failures.is_some(),
            "fail_open" => self.fail_open.is_some(),
            "metadata" => self.metadata.is_some(),
            "run_id" => self.run_id.is_some(),
            "crate" => self.krate.is_some(),
            "agent" => self.governance.agent.is_some(),
            "tool" => self.governance.tool.is_some(),
            "spend_usd" => self.governance.spend_usd.is_some(),
            _ => false,
        }
    }

    /// Parses the value of the (accepted, not yet given) option `text`.
    fn parse_value(&mut self, text: &str, name: &Ident, input: ParseStream<'_>) -> syn::Result<()> {
        match text {
            "key" => set(&mut self.key, name, input, parse_expr),
            "key_prefix" => set(&mut self.key_prefix, name, input, parse_prefix),
            "version" => set(&mut self.version, name, input, parse_lit),
            "skip" => set(&mut self.skip, name, input, parse_skip),
            "client" => set(&mut self.client, name, input, parse_expr),
            "ttl" => set(&mut self.ttl, name, input, parse_expr),
            "wait_on_conflict" => set(&mut self.wait_on_conflict, name, input, parse_expr),
            "timeout" => set(&mut self.timeout, name, input, parse_expr),
            "error_code" => set(&mut self.error_code, name, input, parse_error_code),
            "terminal_failures" => set(&mut self.terminal_failures, name, input, parse_flag),
            "fail_open" => set(&mut self.fail_open, name, input, parse_expr),
            "metadata" => set(&mut self.metadata, name, input, parse_expr),
            "run_id" => set(&mut self.run_id, name, input, parse_expr),
            "crate" => set(&mut self.krate, name, input, parse_path),
            "agent" => set(&mut self.governance.agent, name, input, parse_expr),
            "tool" => set(&mut self.governance.tool, name, input, parse_expr),
            "spend_usd" => set(&mut self.governance.spend_usd, name, input, parse_expr),
            _ => Err(syn::Error::new(name.span(), "unhandled option")),
        }
    }
}

fn unknown(kind: Kind, name: &Ident, text: &str) -> syn::Error {
    let hint = match (kind, text) {
        (Kind::Idempotent, "key") => {
            " (the key of #[idempotent] is derived from the arguments; for a key expression use \
             #[idempotent_ai(key = ..)], or rename the key space with `key_prefix = \"..\"`)"
                .to_owned()
        }
        (Kind::IdempotentAi, "skip" | "key_prefix" | "version") => {
            " (the key of #[idempotent_ai] is exactly its `key` expression; this option belongs \
             to #[idempotent])"
                .to_owned()
        }
        (Kind::Idempotent, "agent" | "tool" | "spend_usd") => {
            " (governed calls are a feature of #[idempotent_ai])".to_owned()
        }
        _ => String::new(),
    };
    syn::Error::new(
        name.span(),
        format!(
            "unknown option `{text}` for {}{hint}; valid options are: {}",
            kind.name(),
            kind.valid().join(", ")
        ),
    )
}

fn set<T>(
    slot: &mut Option<Opt<T>>,
    name: &Ident,
    input: ParseStream<'_>,
    parse: fn(&Ident, ParseStream<'_>) -> syn::Result<T>,
) -> syn::Result<()> {
    let value = parse(name, input)?;
    *slot = Some(Opt {
        name: name.clone(),
        value,
    });
    Ok(())
}

/// After an unknown or repeated option: skips `= value` or `(..)` so parsing can go on.
fn skip_value(input: ParseStream<'_>) -> syn::Result<()> {
    if input.peek(syn::token::Paren) {
        let content;
        parenthesized!(content in input);
        let _: TokenStream = content.parse()?;
    } else if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        input.parse::<Expr>()?;
    }
    Ok(())
}

fn expect_eq(name: &Ident, input: ParseStream<'_>) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        Ok(())
    } else {
        Err(syn::Error::new(
            span_after(name, input),
            format!("expected `{} = <value>`", name.unraw()),
        ))
    }
}

/// Where a missing `= value` should be reported: the next token, or the name at the end.
fn span_after(name: &Ident, input: ParseStream<'_>) -> Span {
    if input.is_empty() {
        name.span()
    } else {
        input.span()
    }
}

fn parse_expr(name: &Ident, input: ParseStream<'_>) -> syn::Result<Expr> {
    expect_eq(name, input)?;
    input.parse()
}

fn parse_path(name: &Ident, input: ParseStream<'_>) -> syn::Result<Path> {
    expect_eq(name, input)?;
    input.call(Path::parse_mod_style)
}

fn parse_lit(name: &Ident, input: ParseStream<'_>) -> syn::Result<LitStr> {
    expect_eq(name, input)?;
    if !input.peek(LitStr) {
        return Err(input.error(format!(
            "`{}` must be a string literal: it becomes part of every key, so it is fixed at \
             compile time",
            name.unraw()
        )));
    }
    let lit: LitStr = input.parse()?;
    if lit.value().trim().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{}` must not be empty", name.unraw()),
        ));
    }
    Ok(lit)
}

fn parse_prefix(name: &Ident, input: ParseStream<'_>) -> syn::Result<LitStr> {
    let lit = parse_lit(name, input)?;
    if lit.value().chars().any(char::is_control) {
        return Err(syn::Error::new(
            lit.span(),
            "`key_prefix` must not contain control characters",
        ));
    }
    Ok(lit)
}

fn parse_error_code(name: &Ident, input: ParseStream<'_>) -> syn::Result<Expr> {
    let expr = parse_expr(name, input)?;
    if let Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Str(lit),
        ..
    }) = &expr
        && lit.value().trim().is_empty()
    {
        return Err(syn::Error::new(
            lit.span(),
            "`error_code` must not be empty",
        ));
    }
    Ok(expr)
}

/// `terminal_failures` alone means `true`; `terminal_failures = <bool expr>` is accepted too.
fn parse_flag(_name: &Ident, input: ParseStream<'_>) -> syn::Result<Expr> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        input.parse()
    } else {
        Ok(syn::parse_quote!(true))
    }
}

fn parse_skip(name: &Ident, input: ParseStream<'_>) -> syn::Result<Vec<Ident>> {
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            span_after(name, input),
            "expected `skip(arg, ..)` with the names of the arguments to leave out of the key",
        ));
    }
    let content;
    parenthesized!(content in input);
    let names = Punctuated::<Ident, Token![,]>::parse_terminated_with(&content, Ident::parse_any)?;
    Ok(names.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn parse_err(kind: Kind, tokens: TokenStream) -> syn::Error {
        match Args::parse(kind, tokens) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    fn err(kind: Kind, tokens: TokenStream) -> String {
        parse_err(kind, tokens).to_string()
    }

    #[test]
    fn parses_every_option() {
        let Ok(args) = Args::parse(
            Kind::Idempotent,
            quote!(
                key_prefix = "billing::charge",
                version = "v2",
                skip(a, b),
                client = self.client.clone(),
                ttl = Duration::from_secs(60),
                wait_on_conflict = false,
                timeout = Duration::from_secs(5),
                error_code = "charge_failed",
                terminal_failures,
                fail_open = true,
                metadata = meta(),
                run_id = run.id,
                crate = ::my::rt
            ),
        ) else {
            panic!("valid options")
        };
        assert_eq!(
            args.key_prefix.map(|p| p.value.value()).unwrap_or_default(),
            "billing::charge"
        );
        assert_eq!(args.skip.map(|s| s.value.len()), Some(2));
        assert!(args.terminal_failures.is_some());
        assert!(args.krate.is_some());
    }

    #[test]
    fn unknown_option_lists_the_valid_ones() {
        let e = err(Kind::Idempotent, quote!(tll = 5));
        assert!(e.contains("unknown option `tll`"), "{e}");
        assert!(
            e.contains("valid options are: key_prefix, version, skip"),
            "{e}"
        );
    }

    #[test]
    fn repeated_option_is_reported() {
        let e = err(Kind::IdempotentAi, quote!(key = k, ttl = a, ttl = b));
        assert_eq!(e, "option `ttl` is given twice");
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let e = parse_err(Kind::Idempotent, quote!(foo = 1, ttl = a, bar(x), ttl = b));
        assert_eq!(e.into_iter().count(), 3);
    }

    #[test]
    fn key_belongs_to_idempotent_ai() {
        let e = err(Kind::Idempotent, quote!(key = "x"));
        assert!(e.contains("#[idempotent_ai(key = ..)]"), "{e}");
    }

    #[test]
    fn key_prefix_must_be_a_literal() {
        let e = err(Kind::Idempotent, quote!(key_prefix = some_const));
        assert!(e.contains("must be a string literal"), "{e}");
    }

    #[test]
    fn governance_options_are_parsed_for_the_ai_macro() {
        let Ok(args) = Args::parse(
            Kind::IdempotentAi,
            quote!(key = k, agent = "bot", tool = "t"),
        ) else {
            panic!("governance options parse")
        };
        let gov = &args.governance;
        assert!(gov.agent.is_some() && gov.tool.is_some() && gov.spend_usd.is_none());
    }
}
