//! `fcgi`: a FastCGI client for debugging a deployment. `fcgi help` says
//! what it does; the logic is in the library (`fcgi_server::cli`).

fn main() {
    std::process::exit(fcgi_server::cli::run(std::env::args_os()));
}
