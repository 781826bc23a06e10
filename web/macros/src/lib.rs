//! Procedural macros of the weft web framework, re-exported by `weft`: use them as
//! `#[weft::debug_handler]` and `#[weft::cron]`, never from this crate directly (the code they generate names
//! `::weft`).

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType};

mod cron;

/// Makes a cron task of an `async fn`: see `weft::cron` for the documentation.
#[proc_macro_attribute]
pub fn cron(attr: TokenStream, item: TokenStream) -> TokenStream {
    match cron::expand(attr.into(), item.into()) {
        Ok(task) => task.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// Checks a handler where it is written: see `weft::debug_handler` for the documentation.
#[proc_macro_attribute]
pub fn debug_handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    let checks = match expand(attr.into(), item.clone()) {
        Ok(checks) => checks,
        Err(error) => error.to_compile_error(),
    };
    // The function itself is left exactly as written.
    quote!(#item #checks).into()
}

/// The compile-time checks for one handler, emitted next to it.
fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    if !attr.is_empty() {
        return Err(syn::Error::new(
            attr.span(),
            "`#[debug_handler]` takes no arguments",
        ));
    }
    let function: ItemFn = syn::parse2(item)?;
    let sig = &function.sig;
    let name = &sig.ident;

    let mut errors: Vec<syn::Error> = Vec::new();
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span,
            format!(
                "handler `{name}` is not an `async fn`: `#[debug_handler]` checks async functions \
                 (`async fn {name}(...)`), the usual form of a weft handler"
            ),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new(
            sig.generics.span(),
            format!(
                "handler `{name}` is generic: `#[debug_handler]` checks concrete handlers only; \
                 remove the attribute, or check an instance with \
                 `weft::handler::check_handler({name}::<...>)`"
            ),
        ));
    }
    for input in &sig.inputs {
        if let FnArg::Receiver(receiver) = input {
            errors.push(syn::Error::new(
                receiver.span(),
                format!(
                    "`{name}` is a method: `self` cannot be extracted from a request, and \
                     `#[debug_handler]` checks free functions only; for a type that holds its \
                     dependencies, implement `weft::handler::Endpoint` instead"
                ),
            ));
        }
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new(
            variadic.span(),
            "a handler cannot be variadic",
        ));
    }
    if let Some(mut first) = errors.pop() {
        for error in errors {
            first.combine(error);
        }
        return Err(first);
    }

    let args: Vec<(&syn::Pat, &syn::Type)> = sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(typed) => Some((&*typed.pat, &*typed.ty)),
            FnArg::Receiver(_) => None,
        })
        .collect();
    if args.len() > 12 {
        return Err(syn::Error::new(
            sig.inputs.span(),
            format!(
                "handler `{name}` takes {} arguments; a handler takes at most 12",
                args.len()
            ),
        ));
    }

    let mut items = Vec::new();
    let mut calls = Vec::new();
    for (index, (pat, ty)) in args.iter().enumerate() {
        let last = index + 1 == args.len();
        let argument = escape(&format!("{}: {}", tidy(pat), tidy(ty)));
        let bound = format_ident!("__WeftArgument{index}");
        let check = format_ident!("__weft_check_argument_{index}");
        if last {
            let message = format!(
                "argument `{argument}` of handler `{name}` is not an extractor: `{{Self}}` \
                 implements neither `FromRequest` nor `FromRequestParts`"
            );
            items.push(quote! {
                #[diagnostic::on_unimplemented(
                    message = #message,
                    label = "this argument cannot be extracted from a request",
                    note = "the last argument of a handler may read the body (Json<T>, Form<T>, Bytes, String, Multipart, Request) or be any `FromRequestParts` extractor (Path, Query, HeaderMap, Inject<T>, State<T>, Cookies, ...)"
                )]
                trait #bound<M> {}
                impl<M, T: ::weft::extract::FromRequest<M>> #bound<M> for T {}
                fn #check<M, T: #bound<M>>() {}
            });
            calls.push(quote_spanned!(ty.span()=> #check::<_, #ty>();));
        } else {
            let message = format!(
                "argument `{argument}` of handler `{name}` is not an extractor of the request \
                 head: `{{Self}}` does not implement `FromRequestParts`"
            );
            items.push(quote! {
                #[diagnostic::on_unimplemented(
                    message = #message,
                    label = "this argument cannot be extracted from the request head",
                    note = "every argument of a handler but the last implements `FromRequestParts` (Path, Query, HeaderMap, Inject<T>, State<T>, Cookies, ...)",
                    note = "only the last argument may read the body (Json<T>, Form<T>, Bytes, String, Multipart, Request): if this one does, make it the last"
                )]
                trait #bound {}
                impl<T: ::weft::extract::FromRequestParts> #bound for T {}
                fn #check<T: #bound>() {}
            });
            calls.push(quote_spanned!(ty.span()=> #check::<#ty>();));
        }
    }

    // `-> ()` (no return type) is a response already: nothing to check.
    if let ReturnType::Type(_, output) = &sig.output {
        let message = format!(
            "handler `{name}` returns `{}`, which is not a response: `{{Self}}` does not \
             implement `IntoOutcome`",
            escape(&tidy(output))
        );
        items.push(quote! {
            #[diagnostic::on_unimplemented(
                message = #message,
                label = "not a response",
                note = "a handler returns a type implementing `IntoResponse` (String, &'static str, Html<_>, Json<_>, Bytes, StatusCode, (StatusCode, _), Response, Redirect, ...), or `Result<T, E>` with `T: IntoResponse` and `E: Into<weft::Error>` (any `std::error::Error` is)"
            )]
            trait __WeftOutput {}
            impl<T: ::weft::response::IntoOutcome> __WeftOutput for T {}
            fn __weft_check_output<T: __WeftOutput>() {}
        });
        calls.push(quote_spanned!(output.span()=> __weft_check_output::<#output>();));
    }

    // The future must be `Send`: rustc's own diagnostic then names the value held across an
    // `.await`. Value-free: the future's type is inferred from the function item.
    let types = args.iter().map(|(_, ty)| ty);
    items.push(quote! {
        fn __weft_check_send<Fut: ::core::marker::Send>(_: impl ::core::ops::FnOnce(#(#types),*) -> Fut) {}
    });
    calls.push(quote_spanned!(name.span()=> __weft_check_send(#name);));

    let run = Span::mixed_site();
    Ok(quote_spanned! {run=>
        // No `allow` of a rustc lint a crate may `forbid` (`missing_docs`, ...): the items
        // are private to this block, named in camel case, and only `dead_code` applies.
        #[allow(dead_code, clippy::all, clippy::pedantic, clippy::nursery)]
        const _: () = {
            #(#items)*
            fn __weft_checks() {
                #(#calls)*
            }
        };
    })
}

/// Source-like text of a pattern or type, for error messages (`Json<Vec<u8>>`, not
/// `Json < Vec < u8 > >`).
fn tidy(tokens: &impl quote::ToTokens) -> String {
    let mut out = String::new();
    render(tokens.to_token_stream(), &mut out);
    out
}

/// Appends `tokens` to `out` with the spacing rustfmt would give a type or a pattern.
fn render(tokens: TokenStream2, out: &mut String) {
    use proc_macro2::{Delimiter, Spacing, TokenTree};
    let mut joint = false;
    for token in tokens {
        let was_joint = std::mem::take(&mut joint);
        match token {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{ ", " }"),
                    Delimiter::None => ("", ""),
                };
                if group.delimiter() == Delimiter::Brace && !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
                out.push_str(open);
                render(group.stream(), out);
                out.push_str(close);
            }
            TokenTree::Ident(ident) => {
                if out.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    out.push(' ');
                }
                out.push_str(&ident.to_string());
            }
            TokenTree::Literal(literal) => out.push_str(&literal.to_string()),
            TokenTree::Punct(punct) => {
                let c = punct.as_char();
                joint = punct.spacing() == Spacing::Joint;
                match c {
                    ',' | ';' => {
                        out.push(c);
                        out.push(' ');
                    }
                    ':' if joint || was_joint => out.push(':'),
                    ':' => out.push_str(": "),
                    '-' if joint => out.push_str(" -"),
                    '>' if was_joint && out.ends_with('-') => out.push_str("> "),
                    '=' | '+' => {
                        out.push(' ');
                        out.push(c);
                        out.push(' ');
                    }
                    _ => out.push(c),
                }
            }
        }
    }
}

/// Escapes the braces of `text` for a `#[diagnostic::on_unimplemented]` format string.
fn escape(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tidy_str(source: &str) -> String {
        let tokens: TokenStream2 = source.parse().unwrap();
        tidy(&tokens)
    }

    #[test]
    fn argument_text_reads_like_source() {
        for source in [
            "config: Config",
            "Path(id): Path<u32>",
            "Path((team, user)): Path<(u32, String)>",
            "Query(q): Query<HashMap<String, Vec<u8>>>",
            "body: &'static str",
            "mut headers: http::HeaderMap",
            "Point { x, y }: Point",
            "cb: Box<dyn Fn(u8) -> u8 + Send>",
            "items: [u8; 4]",
        ] {
            assert_eq!(tidy_str(source), source);
        }
    }

    #[test]
    fn braces_are_escaped_for_on_unimplemented() {
        assert_eq!(escape("Point { x }: Point"), "Point {{ x }}: Point");
    }
}
