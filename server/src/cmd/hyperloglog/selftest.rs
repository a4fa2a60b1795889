//! PFSELFTEST: Redis's self-checks of the register packing and of the
//! estimator, run on this implementation.

use rand::Rng;

use super::estimate::{pattern, REGISTERS};
use super::sketch::{self, DENSE_SIZE, HDR_SIZE, SPARSE};

/// Elements added in the error test (Redis adds 10 million; checkpoints
/// are the powers of ten up to this).
const ERROR_TEST_ELEMENTS: u64 = 1_000_000;
/// Random fill rounds of the register test, after the 64 rounds that put
/// every value in every register.
const RANDOM_ROUNDS: usize = 16;

/// Runs both tests; the error is the reply text (`TESTFAILED ...`).
pub fn run(sparse_max_bytes: u64) -> Result<(), String> {
    registers_test()?;
    error_test(sparse_max_bytes)
}

/// Test 1: every register keeps the value it was set to, whatever its
/// neighbours hold.
fn registers_test() -> Result<(), String> {
    let mut rng = rand::thread_rng();
    let mut registers = vec![0u8; DENSE_SIZE - HDR_SIZE];
    let mut expected = vec![0u8; REGISTERS];
    for round in 0..64 + RANDOM_ROUNDS {
        for (i, e) in expected.iter_mut().enumerate() {
            *e = if round < 64 {
                ((i + round) & 63) as u8
            } else {
                rng.gen_range(0..64)
            };
            sketch::dense_set(&mut registers, i, *e);
        }
        for (i, &e) in expected.iter().enumerate() {
            let got = sketch::dense_get(&registers, i);
            if got != e {
                return Err(format!(
                    "TESTFAILED Register {i} should be {e} but is {got}"
                ));
            }
        }
    }
    Ok(())
}

/// Test 2: unique elements added to a dense and a sparse HyperLogLog at
/// once; at every power of ten the two agree, the sparse one is still
/// sparse while small, and the error is under six standard errors.
fn error_test(sparse_max_bytes: u64) -> Result<(), String> {
    let mut dense = sketch::new_empty();
    sketch::sparse_to_dense(&mut dense).map_err(|_| "TESTFAILED dense conversion".to_string())?;
    let mut sparse = sketch::new_empty();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let seed: u64 = rand::thread_rng().gen();
    let mut checkpoint: u64 = 1;
    for j in 1..=ERROR_TEST_ELEMENTS {
        let element = (j ^ seed).to_le_bytes();
        let (index, count) = pattern(&element);
        let corrupted = |_| "TESTFAILED corrupted HLL".to_string();
        sketch::raise(&mut dense, index, count, sparse_max_bytes).map_err(corrupted)?;
        sketch::raise(&mut sparse, index, count, sparse_max_bytes).map_err(corrupted)?;
        if j != checkpoint {
            continue;
        }
        if j < sparse_max_bytes / 2 && sketch::encoding(&sparse) != SPARSE {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let estimate = sketch::count(&dense).map_err(corrupted)?;
        if sketch::count(&sparse).map_err(corrupted)? != estimate {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let abserr = checkpoint.abs_diff(estimate);
        let maxerr = if j == 10 {
            // Collisions make large errors at 10 elements likely enough.
            1
        } else {
            (relerr * 6.0 * checkpoint as f64).ceil() as u64
        };
        if abserr > maxerr {
            return Err(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn selftest_passes() {
        assert_eq!(super::run(3000), Ok(()));
        assert_eq!(super::run(100), Ok(()));
    }
}
