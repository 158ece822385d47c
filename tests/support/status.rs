//! Reading the server's status page in tests: one request, and the plain
//! text format parsed into its samples.

use std::collections::HashMap;
use std::time::Duration;

use fcgi_server::client::{Client, ClientResponse};

/// The params of a GET for `path` (as `SCRIPT_NAME`, no `PATH_INFO`) with
/// `query`.
pub fn params(path: &str, query: &str) -> Vec<(&'static str, String)> {
    let uri = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    vec![
        ("REQUEST_METHOD", "GET".into()),
        ("SCRIPT_NAME", path.into()),
        ("QUERY_STRING", query.into()),
        ("REQUEST_URI", uri),
    ]
}

/// One request for `path?query` on a new connection to `addr`.
pub fn fetch(addr: &str, path: &str, query: &str) -> ClientResponse {
    let mut c = Client::connect(addr).unwrap();
    c.set_timeout(Some(Duration::from_secs(10))).unwrap();
    c.request(params(path, query), &b""[..]).unwrap()
}

/// The samples of the plain-text status page: `name{labels}` to value
/// (`NaN` for an unknown one), up to the workers' table.
#[derive(Debug, Clone)]
pub struct Figures(pub HashMap<String, f64>);

impl Figures {
    pub fn parse(text: &str) -> Figures {
        let samples = text
            .lines()
            .take_while(|l| !l.is_empty())
            .map(|l| {
                let (name, value) = l.rsplit_once(' ').expect("name value");
                (name.trim().to_owned(), value.parse().expect("a number"))
            })
            .collect();
        Figures(samples)
    }

    /// The value of sample `name`; panics when the page lacks it.
    pub fn get(&self, name: &str) -> f64 {
        *self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("{name} not on the status page: {:?}", self.0.keys()))
    }

    /// How much each sample in `names` grew from `before` to `self`.
    pub fn growth(&self, before: &Figures, names: &[&str]) -> Vec<(String, f64)> {
        names
            .iter()
            .map(|n| (n.to_string(), self.get(n) - before.get(n)))
            .collect()
    }
}

/// The figures from the status page at `path` on `addr`.
pub fn figures(addr: &str, path: &str) -> Figures {
    let res = fetch(addr, path, "");
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    Figures::parse(&String::from_utf8_lossy(&res.body))
}
