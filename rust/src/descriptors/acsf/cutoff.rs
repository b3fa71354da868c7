//! n2p2's cutoff functions f_c(r) (`cutoff_type` 0 to 8) with the inner cutoff
//! r_ci = alpha r_c: f_c = 1 for r < r_ci, f(x) with x = (r - r_ci) / (r_c - r_ci) for
//! r_ci <= r < r_c, and 0 for r >= r_c. "tanhu" and "tanh" are functions of r / r_c and
//! ignore alpha, and "hard" is 1 everywhere below r_c, as in n2p2.

use serde::{Deserialize, Serialize};

/// The shape of the cutoff function; n2p2's `cutoff_type` number in brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CutoffKind {
    /// (0) f = 1.
    Hard,
    /// (1) f(x) = (cos(pi x) + 1) / 2.
    Cos,
    /// (2) f_c(r) = tanh^3(1 - r / r_c), no inner cutoff.
    Tanhu,
    /// (3) f_c(r) = tanh^3(1 - r / r_c) / tanh^3(1), so that f_c(0) = 1; no inner cutoff.
    Tanh,
    /// (4) f(x) = e exp(1 / (x^2 - 1)).
    Exp,
    /// (5) f(x) = (2x - 3) x^2 + 1.
    Poly1,
    /// (6) f(x) = ((15 - 6x) x - 10) x^3 + 1.
    Poly2,
    /// (7) f(x) = (x (x (20x - 70) + 84) - 35) x^4 + 1.
    Poly3,
    /// (8) f(x) = (x (x ((315 - 70x) x - 540) + 420) - 126) x^5 + 1.
    Poly4,
}

/// One cutoff function at one radius: f_c and df_c/dr for r < r_c (callers test r < r_c).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CutoffFunction {
    kind: CutoffKind,
    rc: f64,
    /// The inner cutoff alpha r_c, Angstrom.
    rci: f64,
    /// 1 / (r_c - r_ci), 1/Angstrom.
    iw: f64,
}

impl CutoffFunction {
    /// `rc` > 0 and 0 <= `alpha` < 1 (checked by the caller).
    pub fn new(kind: CutoffKind, rc: f64, alpha: f64) -> Self {
        let rci = alpha * rc;
        CutoffFunction {
            kind,
            rc,
            rci,
            iw: 1.0 / (rc - rci),
        }
    }

    pub fn radius(&self) -> f64 {
        self.rc
    }

    /// (f_c(r), df_c/dr) for 0 <= r < r_c, df_c in 1/Angstrom.
    #[inline]
    pub fn eval(&self, r: f64) -> (f64, f64) {
        use std::f64::consts::PI;
        match self.kind {
            CutoffKind::Hard => (1.0, 0.0),
            CutoffKind::Tanhu | CutoffKind::Tanh => {
                let t = (1.0 - r / self.rc).tanh();
                let t2 = t * t;
                // 1 / tanh^3(1) = ((e + 1/e) / (e - 1/e))^3, n2p2's TANH_PRE
                let pre = if self.kind == CutoffKind::Tanh {
                    1.0 / (1.0f64.tanh().powi(3))
                } else {
                    1.0
                };
                (pre * t * t2, 3.0 * pre * t2 * (t2 - 1.0) / self.rc)
            }
            _ => {
                if r < self.rci {
                    return (1.0, 0.0);
                }
                let x = (r - self.rci) * self.iw;
                let (f, df) = match self.kind {
                    CutoffKind::Cos => {
                        let (s, c) = (PI * x).sin_cos();
                        (0.5 * (c + 1.0), -0.5 * PI * s)
                    }
                    CutoffKind::Exp => {
                        let t = 1.0 / (x * x - 1.0);
                        let e = std::f64::consts::E * t.exp();
                        (e, -2.0 * x * t * t * e)
                    }
                    CutoffKind::Poly1 => ((2.0 * x - 3.0) * x * x + 1.0, x * (6.0 * x - 6.0)),
                    CutoffKind::Poly2 => {
                        let x2 = x * x;
                        (
                            ((15.0 - 6.0 * x) * x - 10.0) * x * x2 + 1.0,
                            x2 * ((60.0 - 30.0 * x) * x - 30.0),
                        )
                    }
                    CutoffKind::Poly3 => {
                        let x2 = x * x;
                        (
                            (x * (x * (20.0 * x - 70.0) + 84.0) - 35.0) * x2 * x2 + 1.0,
                            x2 * x * (x * (x * (140.0 * x - 420.0) + 420.0) - 140.0),
                        )
                    }
                    CutoffKind::Poly4 => {
                        let x4 = (x * x) * (x * x);
                        (
                            (x * (x * ((315.0 - 70.0 * x) * x - 540.0) + 420.0) - 126.0) * x * x4
                                + 1.0,
                            x4 * (x * (x * ((2520.0 - 630.0 * x) * x - 3780.0) + 2520.0) - 630.0),
                        )
                    }
                    CutoffKind::Hard | CutoffKind::Tanhu | CutoffKind::Tanh => unreachable!(),
                };
                (f, df * self.iw)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [CutoffKind; 9] = [
        CutoffKind::Hard,
        CutoffKind::Cos,
        CutoffKind::Tanhu,
        CutoffKind::Tanh,
        CutoffKind::Exp,
        CutoffKind::Poly1,
        CutoffKind::Poly2,
        CutoffKind::Poly3,
        CutoffKind::Poly4,
    ];

    #[test]
    fn derivatives_match_finite_differences() {
        let h = 1e-6;
        for kind in ALL {
            for alpha in [0.0, 0.3] {
                let fc = CutoffFunction::new(kind, 4.5, alpha);
                for k in 1..90 {
                    let r = 0.05 * k as f64;
                    if (r - alpha * 4.5).abs() < 2.0 * h || r + h >= 4.5 {
                        continue;
                    }
                    let numeric = (fc.eval(r + h).0 - fc.eval(r - h).0) / (2.0 * h);
                    let (_, df) = fc.eval(r);
                    assert!(
                        (df - numeric).abs() < 1e-7,
                        "{kind:?} alpha {alpha} r {r}: {df} {numeric}"
                    );
                }
            }
        }
    }

    #[test]
    fn inner_cutoff_and_outer_limits() {
        let rc = 5.0;
        for kind in ALL {
            let alpha = 0.4;
            let fc = CutoffFunction::new(kind, rc, alpha);
            let honours_alpha = !matches!(kind, CutoffKind::Tanhu | CutoffKind::Tanh);
            if honours_alpha {
                assert_eq!(
                    fc.eval(0.5 * alpha * rc),
                    (1.0, 0.0),
                    "{kind:?} inside r_ci"
                );
                // continuous at r_ci: f(x = 0) = 1
                let (f, _) = fc.eval(alpha * rc);
                assert!((f - 1.0).abs() < 1e-15, "{kind:?} at r_ci: {f}");
                let (f, _) = fc.eval(alpha * rc + 1e-9);
                assert!((f - 1.0).abs() < 1e-8, "{kind:?} just above r_ci: {f}");
            } else {
                // a function of r / r_c alone
                assert_eq!(fc.eval(1.0), CutoffFunction::new(kind, rc, 0.0).eval(1.0));
            }
            if kind != CutoffKind::Hard {
                let (f, _) = fc.eval(rc * (1.0 - 1e-9));
                assert!(f.abs() < 1e-8, "{kind:?} at r_c: {f}");
            }
        }
        // tanh is normalised: f_c(0) = 1
        let (f, _) = CutoffFunction::new(CutoffKind::Tanh, rc, 0.0).eval(0.0);
        assert!((f - 1.0).abs() < 1e-15);
        // the polynomials reach 0 with 0 slope at x = 1
        for kind in [
            CutoffKind::Poly1,
            CutoffKind::Poly2,
            CutoffKind::Poly3,
            CutoffKind::Poly4,
        ] {
            let (f, df) = CutoffFunction::new(kind, rc, 0.2).eval(rc);
            assert!(f.abs() < 1e-12 && df.abs() < 1e-10, "{kind:?}: {f} {df}");
        }
        let (f, df) = CutoffFunction::new(CutoffKind::Cos, rc, 0.0).eval(rc);
        assert!(f.abs() < 1e-15 && df.abs() < 1e-15);
    }
}
