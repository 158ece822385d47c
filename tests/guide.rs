//! The guide and the README stay in step with the repository: every file
//! in `deploy/` is shown on a guide page (which includes the file itself,
//! so the text shown cannot drift from what the front-end tests use),
//! every guide page the README links to exists, and the README stays
//! short, the reference living in the guide. Reads files only; runs in
//! milliseconds.

use std::fs;
use std::path::Path;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn every_deploy_file_is_shown_in_the_guide() {
    let guide = read("src/guide/deploy.rs") + &read("src/guide/mod.rs");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.len() >= 10, "deploy/ holds only {names:?}");
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| !guide.contains(&format!(", \"{name}\")]")))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/ files that no guide page shows (add a deploy_file! line): {missing:?}"
    );
}

#[test]
fn the_guide_pages_the_readme_links_to_exist() {
    let readme = read("README.md");
    let guide = read("src/guide/mod.rs");
    let prefix = "https://docs.rs/fcgi-server/latest/fcgi_server/guide/";
    let mut pages = 0;
    for (at, _) in readme.match_indices(prefix) {
        let rest = &readme[at + prefix.len()..];
        let page = &rest[..rest.find(['/', ')', '#']).unwrap()];
        if page.is_empty() {
            continue;
        }
        pages += 1;
        assert!(
            guide.contains(&format!("pub mod {page}")),
            "the README links to the guide page `{page}`, which src/guide/mod.rs lacks"
        );
    }
    assert!(pages >= 7, "the README links to {pages} guide pages");
}

#[test]
fn the_readme_stays_short() {
    let len = read("README.md").len();
    assert!(
        len <= 15_000,
        "README.md is {len} bytes; move detail to the guide"
    );
}
