//! Generates the `tracelink.v1` gRPC API and the `tracelink.raw.v1` raw-record format
//! from `proto/` with the vendored protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment here.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto");
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
