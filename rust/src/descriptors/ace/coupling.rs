//! The generalised Clebsch-Gordan coefficients that couple K spherical harmonics
//! (l_1 m_1) ... (l_K m_K) to a rotation invariant through intermediate momenta L_1 ...
//! L_(K-2), on pacemaker's coupling tree (Drautz, Phys. Rev. B 99, 014104 (2019); Lysogorskiy
//! et al., npj Comput. Mater. 7, 97 (2021)): the leaves are paired (1, 2), (3, 4), ... in
//! order, each pair coupled to the next intermediate; the intermediates are then paired in
//! the order they were made; for odd K the last intermediate couples to the last leaf; the
//! final node has L = 0. The coefficient of an m-combination is the product of the
//! ordinary Clebsch-Gordan coefficients <L_a M_a L_b M_b | L_c M_c> of the nodes.

use crate::descriptors::bispectrum::clebsch_gordan::clebsch_gordan;

/// <l1 m1 l2 m2 | l m> for integer momenta (Condon-Shortley).
pub fn cg(l1: usize, m1: i64, l2: usize, m2: i64, l: usize, m: i64) -> f64 {
    let ok = |l: usize, m: i64| m.unsigned_abs() as usize <= l;
    if !(ok(l1, m1) && ok(l2, m2) && ok(l, m)) || m1 + m2 != m {
        return 0.0;
    }
    let offset = |l: usize, m: i64| (l as i64 + m) as usize;
    clebsch_gordan(
        2 * l1,
        offset(l1, m1),
        2 * l2,
        offset(l2, m2),
        2 * l,
        offset(l, m),
    )
}

/// The tree's nodes (a, b, c): momenta a and b couple to c. Leaves are 0..K, intermediates
/// K..2K-2 in the order of `lint`, the final node 2K-2.
pub fn tree(rank: usize) -> Vec<(usize, usize, usize)> {
    if rank < 2 {
        return Vec::new();
    }
    let mut leaves: std::collections::VecDeque<usize> = (0..rank).collect();
    let mut intermediates: std::collections::VecDeque<usize> = (rank..2 * rank - 2).collect();
    let mut queue = std::collections::VecDeque::new();
    let mut nodes = Vec::new();
    let mut last = None;
    for _ in 0..rank / 2 {
        let (a, b) = (leaves.pop_front().unwrap(), leaves.pop_front().unwrap());
        last = intermediates.pop_front();
        nodes.push((a, b, last));
        queue.push_back(last);
    }
    while queue.len() > 1 && last.is_some() {
        let (a, b) = (
            queue.pop_front().unwrap().unwrap(),
            queue.pop_front().unwrap().unwrap(),
        );
        last = intermediates.pop_front();
        nodes.push((a, b, last));
        queue.push_back(last);
    }
    if last.is_some() {
        let a = queue.pop_front().unwrap().unwrap();
        nodes.push((a, leaves.pop_front().unwrap(), None));
    }
    let final_node = 2 * rank - 2;
    nodes
        .into_iter()
        .map(|(a, b, c)| (a, b, c.unwrap_or(final_node)))
        .collect()
}

/// The m-combinations of a function with momenta `ls` and intermediates `lint` and their
/// coefficients, halved: the sum over all combinations of C prod A is real for an even
/// sum of ls, and the combinations with -m are the complex conjugates of those with m, so
/// only those whose first non-zero m is positive are kept, with twice the coefficient
/// (the one with every m = 0 once). Flattened: `rank` m's per combination.
pub fn half_combinations(ls: &[usize], lint: &[usize]) -> (Vec<i64>, Vec<f64>) {
    let rank = ls.len();
    let momenta: Vec<usize> = ls.iter().chain(lint).copied().chain([0]).collect();
    let nodes = tree(rank);
    let (mut ms_out, mut coeffs) = (Vec::new(), Vec::new());
    let mut ms = vec![0i64; rank];
    let mut all = vec![0i64; 2 * rank - 1];
    // every ms with |m_t| <= l_t, the first index fastest
    let total: usize = ls.iter().map(|l| 2 * l + 1).product();
    for mut code in 0..total {
        for (t, &l) in ls.iter().enumerate() {
            let width = 2 * l + 1;
            ms[t] = (code % width) as i64 - l as i64;
            code /= width;
        }
        if ms.iter().sum::<i64>() != 0 {
            continue;
        }
        let first = ms.iter().copied().find(|&m| m != 0).unwrap_or(0);
        if first < 0 {
            continue;
        }
        all[..rank].copy_from_slice(&ms);
        let mut c = 1.0;
        for &(a, b, o) in &nodes {
            all[o] = all[a] + all[b];
            c *= cg(momenta[a], all[a], momenta[b], all[b], momenta[o], all[o]);
            if c == 0.0 {
                break;
            }
        }
        if c != 0.0 {
            ms_out.extend_from_slice(&ms);
            coeffs.push(if first > 0 { 2.0 * c } else { c });
        }
    }
    (ms_out, coeffs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_as_pacemaker_builds_them() {
        assert_eq!(tree(2), vec![(0, 1, 2)]);
        assert_eq!(tree(3), vec![(0, 1, 3), (3, 2, 4)]);
        assert_eq!(tree(4), vec![(0, 1, 4), (2, 3, 5), (4, 5, 6)]);
        assert_eq!(tree(5), vec![(0, 1, 5), (2, 3, 6), (5, 6, 7), (7, 4, 8)]);
        assert_eq!(
            tree(6),
            vec![(0, 1, 6), (2, 3, 7), (4, 5, 8), (6, 7, 9), (8, 9, 10)]
        );
    }

    #[test]
    fn rank_two_is_the_power_spectrum_coupling() {
        // <l m l -m | 0 0> = (-1)^(l-m) / sqrt(2l + 1)
        let (ms, c) = half_combinations(&[2, 2], &[]);
        assert_eq!(ms, vec![2, -2, 1, -1, 0, 0]);
        for (k, &m) in [2i64, 1, 0].iter().enumerate() {
            let want = (-1f64).powi((2 - m) as i32) / 5f64.sqrt() * if m > 0 { 2.0 } else { 1.0 };
            assert!((c[k] - want).abs() < 1e-15, "{k}: {} {want}", c[k]);
        }
    }
}
