//! Clebsch-Gordan coefficients <j1/2 m1', j2/2 m2' | j/2 m'> from Racah's closed formula.
//!
//! Written here rather than taken from a crate: the Rust crates for Wigner symbols work in
//! arbitrary-precision integers (a heavy dependency for a table built once), while for the
//! band limits SNAP uses (2J <= ~24) the formula in f64 factorials is accurate to rounding,
//! which is also how LAMMPS evaluates it.
//!
//! Labels are LAMMPS's array offsets: j = 2J and m = J + M, so 0 <= m <= j.

/// n! as f64; exact up to 22!, correctly rounded beyond.
fn factorial(n: usize) -> f64 {
    (1..=n).map(|k| k as f64).product()
}

/// <j1 m1, j2 m2 | j m> in offset labels, or 0 when the labels do not couple.
pub fn clebsch_gordan(j1: usize, m1: usize, j2: usize, m2: usize, j: usize, m: usize) -> f64 {
    let (j1, m1, j2, m2, j, m) = (
        j1 as i64, m1 as i64, j2 as i64, m2 as i64, j as i64, m as i64,
    );
    // projections in doubled units: 2M = 2m - j
    let (a1, a2, a) = (2 * m1 - j1, 2 * m2 - j2, 2 * m - j);
    if a != a1 + a2 || j > j1 + j2 || j < (j1 - j2).abs() || (j1 + j2 + j) % 2 != 0 {
        return 0.0;
    }
    if m1 < 0 || m1 > j1 || m2 < 0 || m2 > j2 || m < 0 || m > j {
        return 0.0;
    }
    let f = |twice: i64| factorial((twice / 2) as usize);
    // all the half sums below are integers because j1 + j2 + j is even
    let triangle = f(j1 + j2 - j) * f(j1 - j2 + j) * f(-j1 + j2 + j) / f(j1 + j2 + j + 2);
    let projections = f(j1 + a1) * f(j1 - a1) * f(j2 + a2) * f(j2 - a2) * f(j + a) * f(j - a);
    let zmin = 0.max((j2 - j - a1) / 2).max((j1 - j + a2) / 2);
    let zmax = ((j1 + j2 - j) / 2).min((j1 - a1) / 2).min((j2 + a2) / 2);
    let mut sum = 0.0;
    for z in zmin..=zmax {
        let sign = if z % 2 == 0 { 1.0 } else { -1.0 };
        sum += sign
            / (factorial(z as usize)
                * f(j1 + j2 - j - 2 * z)
                * f(j1 - a1 - 2 * z)
                * f(j2 + a2 - 2 * z)
                * f(j - j2 + a1 + 2 * z)
                * f(j - j1 - a2 + 2 * z));
    }
    sum * ((j + 1) as f64 * triangle * projections).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // <1/2 1/2, 1/2 -1/2 | 1 0> = 1/sqrt(2); <1/2 1/2, 1/2 -1/2 | 0 0> = 1/sqrt(2)
        let h = 0.5f64.sqrt();
        assert!((clebsch_gordan(1, 1, 1, 0, 2, 1) - h).abs() < 1e-15);
        assert!((clebsch_gordan(1, 1, 1, 0, 0, 0) - h).abs() < 1e-15);
        // <1/2 -1/2, 1/2 1/2 | 0 0> = -1/sqrt(2)
        assert!((clebsch_gordan(1, 0, 1, 1, 0, 0) + h).abs() < 1e-15);
        // <1 1, 1 -1 | 2 0> = 1/sqrt(6)
        assert!((clebsch_gordan(2, 2, 2, 0, 4, 2) - (1.0f64 / 6.0).sqrt()).abs() < 1e-15);
        // <1 0, 1 0 | 1 0> = 0
        assert_eq!(clebsch_gordan(2, 1, 2, 1, 2, 1), 0.0);
        assert_eq!(clebsch_gordan(2, 1, 2, 1, 3, 1), 0.0);
    }

    #[test]
    fn orthonormal() {
        // sum over m1, m2 of <j1 m1 j2 m2|j m><j1 m1 j2 m2|j' m'> = delta_jj' delta_mm'
        for j1 in 0..=6 {
            for j2 in 0..=6 {
                for j in 0..=12 {
                    for jp in 0..=12 {
                        for m in 0..=j {
                            for mp in 0..=jp {
                                let mut s = 0.0;
                                for m1 in 0..=j1 {
                                    for m2 in 0..=j2 {
                                        s += clebsch_gordan(j1, m1, j2, m2, j, m)
                                            * clebsch_gordan(j1, m1, j2, m2, jp, mp);
                                    }
                                }
                                let coupled =
                                    j <= j1 + j2 && j >= j1.abs_diff(j2) && (j1 + j2 + j) % 2 == 0;
                                let want = if coupled && j == jp && m == mp {
                                    1.0
                                } else {
                                    0.0
                                };
                                assert!(
                                    (s - want).abs() < 1e-12,
                                    "{j1} {j2} {j} {m} {jp} {mp}: {s}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
