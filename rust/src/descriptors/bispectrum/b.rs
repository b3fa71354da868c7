//! Stage B: B^{pqe}_{j1 j2 j} = sum over (ma, mb) of conj(U^e_j) Z^{pq}_{j1 j2 j}, for every
//! element triple (p, q, e) and every coupling with j >= j1 >= j2, in LAMMPS order: the
//! element triple (p * n + q) * n + e outermost, then the couplings.

use num_complex::Complex64 as C;

use super::contract::half_dot;
use super::indices::Indices;

/// Fills `out` (n_elements^3 * idx.n_b()) from `utot` and `z` (see `z::compute_z`).
#[inline(always)]
pub fn compute_b(idx: &Indices, utot: &[C], z: &[C], n_elements: usize, out: &mut [f64]) {
    let n_b = idx.n_b();
    for pq in 0..n_elements * n_elements {
        let zpq = &z[pq * idx.z_len..(pq + 1) * idx.z_len];
        for e in 0..n_elements {
            let ue = &utot[e * idx.u_len..(e + 1) * idx.u_len];
            let row = &mut out[(pq * n_elements + e) * n_b..(pq * n_elements + e + 1) * n_b];
            for (value, t) in row.iter_mut().zip(&idx.b_triples) {
                let block = idx.z_block(t.j1, t.j2, t.j);
                *value = half_dot(t.j, &ue[idx.u_block[t.j]..], &zpq[block.start..]);
            }
        }
    }
}
