//! Which arguments make up an `#[idempotent]` key, and under which names.
//!
//! Every binding the body can see is part of the key, under its own name: `order_id: &str`
//! is `"order_id"`, and a destructured argument `Point { x, y }: Point` contributes `"x"` and
//! `"y"`. What the body cannot see is not: receivers (`self`, `&self`, `&mut self`,
//! `self: Arc<Self>`), `_` patterns, fields dropped by `..`. `skip(name)` leaves a binding out.

use syn::ext::IdentExt;
use syn::{FnArg, Ident, Pat, Signature, Type};

/// One binding of the signature that goes into the key.
#[derive(Clone)]
pub(crate) struct Binding {
    /// The identifier as written (raw or not), used to refer to the value.
    pub(crate) ident: Ident,
    /// The name in the canonical JSON (`r#type` is `"type"`).
    pub(crate) name: String,
    /// The declared type when the argument is a plain identifier; `None` for bindings inside
    /// a pattern, whose types are not written down.
    pub(crate) ty: Option<Type>,
}

/// The bindings of `sig`'s arguments, in order, receivers excluded.
pub(crate) fn bindings(sig: &Signature) -> Vec<Binding> {
    let mut out = Vec::new();
    for arg in &sig.inputs {
        let FnArg::Typed(pt) = arg else { continue };
        match &*pt.pat {
            Pat::Ident(p) if p.subpat.is_none() => out.push(Binding {
                ident: p.ident.clone(),
                name: p.ident.unraw().to_string(),
                ty: Some((*pt.ty).clone()),
            }),
            pat => {
                let mut idents = Vec::new();
                bound_idents(pat, &mut idents);
                out.extend(idents.into_iter().map(|ident| Binding {
                    name: ident.unraw().to_string(),
                    ident,
                    ty: None,
                }));
            }
        }
    }
    out
}

/// The identifiers a pattern binds, in order of appearance.
fn bound_idents(pat: &Pat, out: &mut Vec<Ident>) {
    match pat {
        Pat::Ident(p) => {
            out.push(p.ident.clone());
            if let Some((_, sub)) = &p.subpat {
                bound_idents(sub, out);
            }
        }
        Pat::Tuple(p) => p.elems.iter().for_each(|p| bound_idents(p, out)),
        Pat::TupleStruct(p) => p.elems.iter().for_each(|p| bound_idents(p, out)),
        Pat::Struct(p) => p.fields.iter().for_each(|f| bound_idents(&f.pat, out)),
        Pat::Slice(p) => p.elems.iter().for_each(|p| bound_idents(p, out)),
        Pat::Reference(p) => bound_idents(&p.pat, out),
        Pat::Paren(p) => bound_idents(&p.pat, out),
        Pat::Type(p) => bound_idents(&p.pat, out),
        // Every alternative binds the same names; the first one lists them.
        Pat::Or(p) => {
            if let Some(first) = p.cases.first() {
                bound_idents(first, out);
            }
        }
        // `_`, `..`, literals, ranges, paths and macros bind nothing we can see.
        _ => {}
    }
}

/// Whether `ty` mentions `impl Trait`, which cannot be named in a turbofish.
pub(crate) fn has_impl_trait(ty: &Type) -> bool {
    use proc_macro2::TokenTree;
    fn walk(tokens: proc_macro2::TokenStream) -> bool {
        tokens.into_iter().any(|tt| match tt {
            TokenTree::Ident(i) => i == "impl",
            TokenTree::Group(g) => walk(g.stream()),
            _ => false,
        })
    }
    walk(quote::ToTokens::to_token_stream(ty))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sig: &str) -> Vec<String> {
        let sig: Signature = syn::parse_str(sig).unwrap();
        bindings(&sig).into_iter().map(|b| b.name).collect()
    }

    #[test]
    fn receivers_are_excluded() {
        assert_eq!(
            names("async fn f(&self, a: u32, r#type: &str)"),
            ["a", "type"]
        );
        assert_eq!(names("async fn f(self: Arc<Self>, a: u32)"), ["a"]);
    }

    #[test]
    fn destructured_arguments_contribute_their_bindings() {
        assert_eq!(
            names("async fn f(Point { x, y: (a, _), .. }: Point, [first, ..]: [u8; 4], _: u8)"),
            ["x", "a", "first"]
        );
        assert_eq!(
            names("async fn f(Wrapper(ref inner): Wrapper, all @ Some(_): Option<u8>)"),
            ["inner", "all"]
        );
    }

    #[test]
    fn impl_trait_is_detected() {
        let ty: Type = syn::parse_str("Vec<impl Serialize>").unwrap();
        assert!(has_impl_trait(&ty));
        let ty: Type = syn::parse_str("Vec<Implement>").unwrap();
        assert!(!has_impl_trait(&ty));
    }
}
