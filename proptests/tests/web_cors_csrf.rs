//! Properties of weft's CORS and CSRF checks: a CSRF token verifies only as it was issued
//! (any tampering is refused), and origin matching never panics, whatever the input.

use proptest::prelude::*;
use weft::cookies::{CookieKey, Key};
use weft::cors::Cors;
use weft::csrf::{CookieTokenStore, TokenStore, same_origin};

fn store() -> CookieTokenStore {
    CookieTokenStore::new(&CookieKey(Key::from(&[7u8; 64])))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_token_verifies_only_unmodified(position in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let store = store();
        let token = store.generate();
        prop_assert!(store.verify(&token));
        let mut tampered = token.clone().into_bytes();
        let at = position.index(tampered.len());
        prop_assume!(tampered[at] != byte);
        tampered[at] = byte;
        let tampered = String::from_utf8_lossy(&tampered).into_owned();
        prop_assert!(!store.verify(&tampered), "{token} -> {tampered}");
    }

    #[test]
    fn a_truncated_or_extended_token_is_refused(cut in any::<prop::sample::Index>(), extra in "[A-Za-z0-9_.-]{1,4}") {
        let store = store();
        let token = store.generate();
        let at = cut.index(token.len());
        prop_assert!(!store.verify(&token[..at]));
        let extended = format!("{token}{extra}");
        prop_assert!(!store.verify(&extended));
    }

    #[test]
    fn another_key_s_token_is_refused(seed in any::<[u8; 32]>()) {
        let mut other = [1u8; 64];
        other[..32].copy_from_slice(&seed);
        prop_assume!(other != [7u8; 64]);
        let token = CookieTokenStore::new(&CookieKey(Key::from(&other))).generate();
        prop_assert!(!store().verify(&token));
    }

    #[test]
    fn arbitrary_text_never_verifies_nor_panics(text in ".*", dotted in "[A-Za-z0-9_-]{0,50}\\.[A-Za-z0-9_-]{0,50}") {
        let store = store();
        prop_assert!(!store.verify(&text));
        prop_assert!(!store.verify(&dotted));
    }

    #[test]
    fn origin_matching_never_panics(origin in ".*", host in ".*", listed in "[a-z]{1,8}") {
        let _ = same_origin(&origin, &host);
        let cors = Cors::new().allow_origins([format!("https://{listed}.example")]);
        let _ = cors.is_origin_allowed(&origin);
        let any = Cors::new().allow_any_origin();
        prop_assert!(any.is_origin_allowed(&origin));
        let none = Cors::new();
        prop_assert!(!none.is_origin_allowed(&origin));
    }

    #[test]
    fn an_origin_matches_its_own_host(host in "[a-z][a-z0-9.-]{0,20}", port in proptest::option::of(1u16..)) {
        let authority = match port {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let own = format!("https://{authority}");
        let shouted = format!("HTTP://{}", authority.to_uppercase());
        let longer = format!("https://{authority}.evil");
        let suffixed = format!("https://{authority}x");
        prop_assert!(same_origin(&own, &authority));
        prop_assert!(same_origin(&shouted, &authority));
        prop_assert!(!same_origin(&longer, &authority));
        let cors = Cors::new().allow_origin(own.clone());
        prop_assert!(cors.is_origin_allowed(&own));
        prop_assert!(!cors.is_origin_allowed(&suffixed));
    }
}
