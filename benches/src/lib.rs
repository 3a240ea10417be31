//! criterion benchmarks of the mathnn workspace live in `benches/`; this library is empty.
