//! Integration tests live in `tests/`. The library holds what `make bench` runs last: the merge
//! of every bench's figures into one results file and table ([`bench_results`]), and the AWS
//! cost model computed from them ([`cost`], `docs/COST.md`).

pub mod bench_results;
pub mod cost;
