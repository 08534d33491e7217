//! The `sipfront` binary.

fn main() {
    println!("sipfront {}", env!("CARGO_PKG_VERSION"));
}
