//! Build script: refuses unsupported targets with a readable error, declares
//! the crate's custom cfgs, and turns the test-only environment switch
//! `GREENLET_FORCE_MPROTECT_GUARD=1` into `cfg(greenlet_force_mprotect)` so CI
//! can exercise the `mprotect` guard-page fallback on kernels that support
//! `MADV_GUARD_INSTALL`.

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(greenlet_force_mprotect)");
    println!("cargo::rustc-check-cfg=cfg(greenlet_asan)");
    println!("cargo::rerun-if-env-changed=GREENLET_FORCE_MPROTECT_GUARD");
    println!("cargo::rerun-if-changed=build.rs");

    // The target triple, for tests that compile C code with the `cc` crate.
    if let Ok(target) = env::var("TARGET") {
        println!("cargo::rustc-env=TARGET_TRIPLE={target}");
    }

    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os != "linux" {
        panic!(
            "\n\ngreenlet supports only Linux for now (target_os = \"{os}\"): its hub is built on \
             epoll and its stacks on Linux guard pages.\n\n"
        );
    }
    if !matches!(
        arch.as_str(),
        "x86_64" | "aarch64" | "riscv64" | "x86" | "arm"
    ) {
        panic!(
            "\n\ngreenlet has not been ported to target_arch = \"{arch}\" (corosensei's context \
             switch and the stack-overflow reporter need it).\n\n"
        );
    }

    // Built with AddressSanitizer: the task slab poisons its free cells.
    if env::var("CARGO_CFG_SANITIZE").is_ok_and(|s| s.split(',').any(|s| s == "address")) {
        println!("cargo::rustc-cfg=greenlet_asan");
    }

    if env::var_os("CARGO_FEATURE_MONKEY").is_some() {
        let env_name = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
        let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
        if env_name != "gnu" {
            panic!(
                "\n\nthe `monkey` feature of greenlet needs glibc (target_env = \"gnu\"), not \
                 \"{env_name}\": the hooks find the real libc functions with dlsym(RTLD_NEXT).\n\n"
            );
        }
        if features.split(',').any(|f| f == "crt-static") {
            panic!(
                "\n\nthe `monkey` feature of greenlet cannot work in a statically linked binary \
                 (crt-static): static glibc defines getaddrinfo and the socket calls a second \
                 time. Build without `-C target-feature=+crt-static`.\n\n"
            );
        }
    }

    if matches!(
        env::var("GREENLET_FORCE_MPROTECT_GUARD").as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    ) {
        println!("cargo::rustc-cfg=greenlet_force_mprotect");
        println!(
            "cargo::warning=greenlet: GREENLET_FORCE_MPROTECT_GUARD is set; stacks use the mprotect guard-page fallback"
        );
    }
}
