//! The server's runtime: a connection's life (`serve`), the epoll set of
//! waiting connections (`poller`), accepting (`accept`), where the
//! listening socket comes from (`listener`), the worker pool (`pool`),
//! which worker looks for work and when another is woken (`rota`) and
//! CGI mode (`cgi`).

pub(crate) mod accept;
pub(crate) mod cgi;
pub(crate) mod listener;
pub(crate) mod poller;
pub(crate) mod pool;
pub(crate) mod rota;
pub(crate) mod serve;
