//! [`Path`]: the parameters a route's pattern captured (`/users/{id}`, `/files/{*path}`),
//! typed with serde.

use std::sync::Arc;

use http::StatusCode;
use http::request::Parts;
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Visitor};

use super::FromRequestParts;
use crate::error::{Error, HttpError};
use crate::problem::Problem;

/// The route's captured parameters, percent-decoded, in pattern order, with the pattern that
/// matched; the router puts them in the request's extensions (one entry for both: each entry
/// costs every request a map insertion).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathParams(
    pub(crate) Vec<(String, String)>,
    pub(crate) Option<Arc<str>>,
);

impl PathParams {
    /// The pattern of the route that matched (`/users/{id}`).
    pub fn pattern(&self) -> Option<&Arc<str>> {
        self.1.as_ref()
    }

    /// The value captured for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every `(name, value)` pair, in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Replaces the value of `name` (pipes do, after transforming it).
    pub(crate) fn set(&mut self, name: &str, value: String) {
        if let Some(slot) = self.0.iter_mut().find(|(key, _)| key == name) {
            slot.1 = value;
        }
    }

    /// Builds parameters from pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        PathParams(pairs.into_iter().collect(), None)
    }
}

impl FromRequestParts for PathParams {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(parts
            .extensions
            .get::<PathParams>()
            .cloned()
            .unwrap_or_default())
    }
}

/// Typed path parameters: one value (`Path<u64>`), several in pattern order
/// (`Path<(String, u32)>`), or a struct by name (`Path<Params>`).
///
/// A value that does not parse is answered `400` with problem details naming the parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Path<T>(pub T);

impl<T> std::ops::Deref for Path<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Why path parameters did not fit the handler's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRejection {
    /// The parameter that failed, when one is to blame.
    pub param: Option<String>,
    /// Why.
    pub message: String,
}

impl std::fmt::Display for PathRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.param {
            Some(param) => write!(f, "path parameter `{param}`: {}", self.message),
            None => write!(f, "path parameters: {}", self.message),
        }
    }
}

impl std::error::Error for PathRejection {}

impl HttpError for PathRejection {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    fn problem(&self) -> Problem {
        let problem = Problem::new(StatusCode::BAD_REQUEST)
            .with_code("path.invalid")
            .with_detail(self.to_string());
        match &self.param {
            Some(param) => problem.with_field(param.clone(), self.message.clone()),
            None => problem,
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> FromRequestParts for Path<T> {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        let params = parts.extensions.get::<PathParams>();
        let empty = PathParams::default();
        let params = params.unwrap_or(&empty);
        T::deserialize(ParamsDeserializer { params })
            .map(Path)
            .map_err(|error| Error::http(error.0))
    }
}

impl<T: DeserializeOwned> Path<T> {
    /// Deserializes parameters outside a request (tests, pipes).
    pub fn from_params(params: &PathParams) -> Result<Self, PathRejection> {
        T::deserialize(ParamsDeserializer { params })
            .map(Path)
            .map_err(|error| error.0)
    }
}

/// A deserialization error carrying a [`PathRejection`].
#[derive(Debug)]
struct ParamError(PathRejection);

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ParamError {}

impl de::Error for ParamError {
    fn custom<M: std::fmt::Display>(message: M) -> Self {
        ParamError(PathRejection {
            param: None,
            message: message.to_string(),
        })
    }
}

impl ParamError {
    fn naming(mut self, param: &str) -> Self {
        if self.0.param.is_none() {
            self.0.param = Some(param.to_owned());
        }
        self
    }
}

/// Forwards single-value requests to the one parameter's deserializer.
macro_rules! one_value {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
            let (param, value) = self.single()?;
            ValueDeserializer { value }.$method(visitor).map_err(|e| e.naming(param))
        }
    )*};
}

/// Deserializes all parameters: a struct or map by name, a tuple or sequence in order, or a
/// single value when there is exactly one.
struct ParamsDeserializer<'a> {
    params: &'a PathParams,
}

impl<'de, 'a> Deserializer<'de> for ParamsDeserializer<'a> {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        match self.params.0.as_slice() {
            [(name, value)] => ValueDeserializer { value }
                .deserialize_any(visitor)
                .map_err(|e| e.naming(name)),
            _ => self.deserialize_map(visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_map(ParamsMap {
            pairs: self.params.0.iter(),
            current: None,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_seq(ParamsSeq {
            pairs: self.params.0.iter(),
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        if len != self.params.0.len() {
            return Err(de::Error::custom(format!(
                "the route captures {} parameters, the handler expects {len}",
                self.params.0.len()
            )));
        }
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        self.deserialize_tuple(len, visitor)
    }

    one_value! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_option
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        let (param, value) = self.single()?;
        ValueDeserializer { value }
            .deserialize_enum(name, variants, visitor)
            .map_err(|e| e.naming(param))
    }

    serde::forward_to_deserialize_any! {
        bytes byte_buf unit unit_struct identifier ignored_any
    }
}

impl<'a> ParamsDeserializer<'a> {
    /// The one parameter a single-value type reads.
    fn single(&self) -> Result<(&'a str, &'a str), ParamError> {
        match self.params.0.as_slice() {
            [(name, value)] => Ok((name, value)),
            params => Err(de::Error::custom(format!(
                "the route captures {} parameters, the handler expects one",
                params.len()
            ))),
        }
    }
}

struct ParamsMap<'a> {
    pairs: std::slice::Iter<'a, (String, String)>,
    current: Option<&'a (String, String)>,
}

impl<'de, 'a> de::MapAccess<'de> for ParamsMap<'a> {
    type Error = ParamError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ParamError> {
        match self.pairs.next() {
            Some(pair) => {
                self.current = Some(pair);
                seed.deserialize(pair.0.as_str().into_deserializer())
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ParamError> {
        let (name, value) = self
            .current
            .take()
            .ok_or_else(|| <ParamError as de::Error>::custom("value before key"))?;
        seed.deserialize(ValueDeserializer { value })
            .map_err(|e| e.naming(name))
    }
}

struct ParamsSeq<'a> {
    pairs: std::slice::Iter<'a, (String, String)>,
}

impl<'de, 'a> de::SeqAccess<'de> for ParamsSeq<'a> {
    type Error = ParamError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ParamError> {
        match self.pairs.next() {
            Some((name, value)) => seed
                .deserialize(ValueDeserializer { value })
                .map(Some)
                .map_err(|e| e.naming(name)),
            None => Ok(None),
        }
    }
}

/// Deserializes one parameter's text as whatever type is asked for.
struct ValueDeserializer<'a> {
    value: &'a str,
}

macro_rules! parse_as {
    ($($method:ident => $visit:ident : $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
            match self.value.parse::<$ty>() {
                Ok(parsed) => visitor.$visit(parsed),
                Err(_) => Err(de::Error::custom(format!(
                    "`{}` is not a valid {}", self.value, stringify!($ty)
                ))),
            }
        }
    )*};
}

impl<'de, 'a> Deserializer<'de> for ValueDeserializer<'a> {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_str(self.value)
    }

    parse_as! {
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
        deserialize_char => visit_char: char,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_enum(self.value.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> PathParams {
        PathParams::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn one_value_a_tuple_and_a_struct() {
        let one: Path<u64> = Path::from_params(&params(&[("id", "42")])).unwrap();
        assert_eq!(one.0, 42);
        let two: Path<(String, u32)> =
            Path::from_params(&params(&[("team", "red"), ("id", "7")])).unwrap();
        assert_eq!(two.0, ("red".to_owned(), 7));
        #[derive(serde::Deserialize)]
        struct Named {
            id: u32,
            team: String,
        }
        let named: Path<Named> =
            Path::from_params(&params(&[("team", "red"), ("id", "7")])).unwrap();
        assert_eq!((named.0.id, named.0.team.as_str()), (7, "red"));
    }

    #[test]
    fn a_bad_value_names_its_parameter() {
        let error = Path::<(String, u32)>::from_params(&params(&[("team", "red"), ("id", "x")]))
            .unwrap_err();
        assert_eq!(error.param.as_deref(), Some("id"));
        assert!(
            error.message.contains("`x` is not a valid u32"),
            "{}",
            error.message
        );
    }

    #[test]
    fn arity_mismatch_is_a_rejection_not_a_panic() {
        assert!(Path::<(u32, u32)>::from_params(&params(&[("id", "1")])).is_err());
    }
}
