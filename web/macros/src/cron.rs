//! `#[weft::cron]`: turns an `async fn` into a function returning the `weft::schedule::CronTask`
//! that runs it, for `App::schedule`.

use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, LitStr, Token};

/// The attribute's arguments: `"expression"` then `tz = "Zone"` and `name = "job"`, in any
/// order.
struct CronArgs {
    expression: LitStr,
    zone: Option<LitStr>,
    name: Option<LitStr>,
}

impl Parse for CronArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let expression: LitStr = input.parse()?;
        let mut args = CronArgs {
            expression,
            zone: None,
            name: None,
        };
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: LitStr = input.parse()?;
            let slot = match key.to_string().as_str() {
                "tz" => &mut args.zone,
                "name" => &mut args.name,
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown argument `{other}`: `#[weft::cron]` takes `tz` and `name`"
                        ),
                    ));
                }
            };
            if slot.replace(value).is_some() {
                return Err(syn::Error::new(key.span(), format!("`{key}` given twice")));
            }
        }
        Ok(args)
    }
}

/// Expands `#[weft::cron(args)]` on `item`.
pub(crate) fn expand(args: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let args: CronArgs = syn::parse2(args)?;
    check_shape(&args.expression)?;
    let function: ItemFn = syn::parse2(item)?;
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span,
            "`#[weft::cron]` applies to an `async fn`",
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            "a cron job takes no arguments (capture what it needs in a closure and use \
             `App::cron` instead)",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a cron job cannot be generic",
        ));
    }
    let ident = &sig.ident;
    let vis = &function.vis;
    let attrs = &function.attrs;
    let expression = &args.expression;
    let name = args
        .name
        .unwrap_or_else(|| LitStr::new(&ident.to_string(), ident.span()));
    let zone = args.zone.map(|zone| quote!(.zone(#zone)));
    // The job keeps its name inside the function that now returns its task.
    Ok(quote! {
        #(#attrs)*
        #vis fn #ident() -> ::weft::schedule::CronTask {
            #function
            ::weft::schedule::CronTask::new(#name, #expression, #ident) #zone
        }
    })
}

/// Refuses an expression that cannot be one by its shape: an alias (`@daily`), or five to
/// seven fields. The fields themselves are checked when the task is added (`App::build`).
fn check_shape(expression: &LitStr) -> syn::Result<()> {
    let text = expression.value();
    let text = text.trim();
    let fields = text.split_whitespace().count();
    if (text.starts_with('@') && fields == 1) || (5..=7).contains(&fields) {
        return Ok(());
    }
    Err(syn::Error::new(
        expression.span(),
        format!(
            "`{text}` is not a cron expression: it needs 5 fields (minute hour day month \
             weekday), 6 with seconds first, or an alias such as `@daily`"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_accepts_fields_and_aliases() {
        for good in ["0 */5 * * *", "*/10 * * * * *", "@daily", " @hourly "] {
            assert!(check_shape(&LitStr::new(good, proc_macro2::Span::call_site())).is_ok());
        }
        for bad in ["", "* * *", "@daily extra", "1 2 3 4 5 6 7 8"] {
            assert!(check_shape(&LitStr::new(bad, proc_macro2::Span::call_site())).is_err());
        }
    }

    #[test]
    fn rejects_arguments() {
        let error = expand(
            quote!("@daily"),
            quote!(
                async fn job(x: u8) {}
            ),
        )
        .unwrap_err();
        assert!(error.to_string().contains("takes no arguments"));
    }
}
