//! Stage B: B^{pqe}_{j1 j2 j} = sum over (mb, ma) of conj(U^e_j) Z^{pq}_{j1 j2 j}, for every
//! element triple (p, q, e) and every coupling with j >= j1 >= j2, in LAMMPS order: the
//! element triple (p * n + q) * n + e outermost, then the couplings.

use super::contract::dot;
use super::indices::Indices;
use super::simd::Simd;

/// Fills `out` (n_elements^3 * idx.n_b()) from the total U (`ur`, `ui`, full layout) and the
/// weighted Z (`zr`, `zi`, see `z::compute_z`).
#[inline(always)]
pub fn compute_b<S: Simd>(
    idx: &Indices,
    ur: &[f64],
    ui: &[f64],
    zr: &[f64],
    zi: &[f64],
    n_elements: usize,
    out: &mut [f64],
) {
    let (n_b, fl, zl) = (idx.n_b(), idx.full_len, idx.z_len);
    for pq in 0..n_elements * n_elements {
        for e in 0..n_elements {
            let row = &mut out[(pq * n_elements + e) * n_b..(pq * n_elements + e + 1) * n_b];
            for (value, t) in row.iter_mut().zip(&idx.b_triples) {
                let len = idx.half_level_len(t.j);
                let u = e * fl + idx.full_start[t.j];
                let z = pq * zl + idx.z_block(t.j1, t.j2, t.j).start;
                *value = dot::<S>(
                    &ur[u..u + len],
                    &ui[u..u + len],
                    &zr[z..z + len],
                    &zi[z..z + len],
                );
            }
        }
    }
}
