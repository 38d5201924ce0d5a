//! Native tests of the public API on real weights, real photos and real devices.
//! One binary, a module per concern (as ripgrep does).

mod backbone;
mod bad_input;
mod cli;
mod fuzz;
mod learning;
mod util;
