//! The framework's conditional requests (`weft::conditional`): entity tags round trip through
//! their field form, the If-Match / If-None-Match parsers and the evaluation never panic on
//! arbitrary input, and a representation always matches its own tag.

use http::Method;
use http::header::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use weft::conditional::{ETag, EntityTags, Precondition, Validators};

proptest! {
    #[test]
    fn tags_round_trip_through_their_field_form(tag in any::<String>(), weak in any::<bool>()) {
        let etag = if weak { ETag::weak(&tag) } else { ETag::strong(&tag) };
        let field = etag.to_header_value();
        let parsed = ETag::parse(field.to_str().unwrap()).expect("a tag weft wrote parses");
        prop_assert_eq!(&parsed, &etag);
        prop_assert_eq!(
            EntityTags::parse(field.as_bytes()),
            Some(EntityTags::List(vec![etag]))
        );
    }

    #[test]
    fn arbitrary_precondition_fields_never_panic(
        fields in prop::collection::vec(
            (prop::sample::select(vec![
                "if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
            ]), prop::collection::vec(any::<u8>(), 0..60)),
            0..4,
        ),
        method in prop::sample::select(vec![Method::GET, Method::HEAD, Method::PUT]),
    ) {
        let mut headers = HeaderMap::new();
        for (name, bytes) in &fields {
            let _ = EntityTags::parse(bytes);
            let _ = ETag::parse(&String::from_utf8_lossy(bytes));
            if let Ok(value) = HeaderValue::from_bytes(bytes) {
                headers.append(*name, value);
            }
        }
        for validators in [
            Validators::new(Some(ETag::strong("v1")), Some(std::time::SystemTime::UNIX_EPOCH)),
            Validators::new(None, None),
            Validators::missing(),
        ] {
            let outcome = validators.evaluate(&method, &headers);
            if method == Method::PUT {
                prop_assert_ne!(outcome, Precondition::NotModified);
            }
        }
    }

    #[test]
    fn a_representation_matches_its_own_tag(tag in "[!#-~]{0,20}") {
        let validators = Validators::new(Some(ETag::strong(&tag)), None);
        let mut headers = HeaderMap::new();
        headers.insert("if-none-match", ETag::weak(&tag).to_header_value());
        prop_assert_eq!(validators.evaluate(&Method::GET, &headers), Precondition::NotModified);
        headers.clear();
        headers.insert("if-match", ETag::strong(&tag).to_header_value());
        prop_assert_eq!(validators.evaluate(&Method::PUT, &headers), Precondition::Proceed);
    }
}
