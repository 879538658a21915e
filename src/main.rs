mod actions;
mod cli;
fn main() {}
