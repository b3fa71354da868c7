//! The neighbor list in the Rust core alone, without Python: 64,000-atom rattled diamond Si,
//! cutoff 5 A, at 1 and 2 threads. Run: cargo bench --bench neighbor_list_core

use std::time::Instant;

use mlpot::neighbors::{neighbor_list, Cutoff, ListOptions};
use mlpot::structure::Structure;

fn rattled_diamond(repeats: usize, a: f64) -> Structure {
    let basis = [
        [0.0, 0.0, 0.0],
        [0.0, 0.5, 0.5],
        [0.5, 0.0, 0.5],
        [0.5, 0.5, 0.0],
        [0.25, 0.25, 0.25],
        [0.25, 0.75, 0.75],
        [0.75, 0.25, 0.75],
        [0.75, 0.75, 0.25],
    ];
    // a linear congruential generator: reproducible and dependency-free
    let mut state: u64 = 1;
    let mut rattle = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.1
    };
    let mut positions = Vec::new();
    for x in 0..repeats {
        for y in 0..repeats {
            for z in 0..repeats {
                for b in &basis {
                    let cell = [x as f64, y as f64, z as f64];
                    positions.push(std::array::from_fn(|k| (cell[k] + b[k]) * a + rattle()));
                }
            }
        }
    }
    let l = a * repeats as f64;
    let n = positions.len();
    Structure::new(
        positions,
        [[l, 0.0, 0.0], [0.0, l, 0.0], [0.0, 0.0, l]],
        [true; 3],
        vec![14; n],
    )
    .unwrap()
}

fn main() {
    let structure = rattled_diamond(20, 5.43);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut best = f64::INFINITY;
        let mut pairs = 0;
        for _ in 0..7 {
            let start = Instant::now();
            let list = pool.install(|| {
                neighbor_list(&structure, &Cutoff::Uniform(5.0), ListOptions::default()).unwrap()
            });
            best = best.min(start.elapsed().as_secs_f64());
            pairs = list.n_pairs();
        }
        println!(
            "{} atoms, {pairs} pairs, {threads} thread(s): {:.1} ms",
            structure.len(),
            best * 1e3
        );
    }
}
