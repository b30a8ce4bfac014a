//! `vset-chaos`: the long fault matrix (placeholder until the cells land).
fn main() {}
