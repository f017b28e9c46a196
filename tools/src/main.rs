//! `tracelink-dev`: the demo and the benchmarks (not part of the service).

fn main() {
    eprintln!("tracelink-dev: being assembled");
    std::process::exit(2);
}
