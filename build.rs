//! Generates the `tracelink.v1` gRPC API and the `tracelink.raw.v1` raw-record format
//! from `proto/` with the vendored protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment here.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto");
    postgres_tests()?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(
            &[
                "proto/tracelink/v1/report.proto",
                "proto/tracelink/raw/v1/raw.proto",
            ],
            &["proto"],
        )?;
    Ok(())
}

/// `TRACELINK_TEST_POSTGRES=skip` leaves the integration tests' PostgreSQL half out of
/// the build (a local convenience); CI (`CI=true`) refuses it, so the PostgreSQL half
/// is never silently skipped there.
fn postgres_tests() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-env-changed=TRACELINK_TEST_POSTGRES");
    println!("cargo:rerun-if-env-changed=CI");
    println!("cargo::rustc-check-cfg=cfg(tracelink_skip_postgres_tests)");
    if std::env::var("TRACELINK_TEST_POSTGRES").as_deref() == Ok("skip") {
        if std::env::var("CI").as_deref() == Ok("true") {
            return Err("TRACELINK_TEST_POSTGRES=skip is refused when CI=true: \
                        CI runs the whole suite on both engines"
                .into());
        }
        println!(
            "cargo:warning=TRACELINK_TEST_POSTGRES=skip: the PostgreSQL half of the tests is not built"
        );
        println!("cargo:rustc-cfg=tracelink_skip_postgres_tests");
    }
    Ok(())
}
