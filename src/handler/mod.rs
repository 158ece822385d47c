//! What the handler sees: the request (its params and a `Read` body) and
//! the response (status, headers and a `Write` body over the output
//! framing of `connection`).

pub(crate) mod request;
pub(crate) mod response;
