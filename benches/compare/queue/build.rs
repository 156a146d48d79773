//! Records the resolved versions of the peers (from Cargo.lock) so the
//! benchmark output says exactly what it compared against.

fn main() {
    println!("cargo::rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    for krate in ["tokio", "may"] {
        let needle = format!("name = \"{krate}\"\nversion = \"");
        let version = lock
            .find(&needle)
            .map(|i| {
                let rest = &lock[i + needle.len()..];
                rest[..rest.find('"').unwrap_or(0)].to_string()
            })
            .unwrap_or_else(|| "?".to_string());
        println!(
            "cargo::rustc-env=PEER_VERSION_{}={version}",
            krate.to_uppercase()
        );
    }
}
