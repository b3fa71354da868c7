//! One atomic structure, validated once: finite positions, a finite cell whose periodic
//! vectors span a non-degenerate lattice, and atomic numbers of real elements.

use crate::error::{Error, Result};

/// Largest atomic number accepted (oganesson). 0 is accepted as ASE's dummy atom "X".
pub const MAX_ATOMIC_NUMBER: u32 = 118;

/// Scale-free singularity criterion of a periodic cell: it is singular when
/// |volume| / (|a| |b| |c|) < DEGENERACY_TOLERANCE (|area| / (|a| |b|) with two periodic
/// directions), the vectors' lengths being those given. The ratio is the volume relative to
/// that of a box of the same edge lengths: 1 for orthogonal vectors, sin(angle) products for
/// skewed ones. Below 1e-10 the volume, computed from vectors of these lengths, keeps fewer
/// than 6 significant digits: the vectors are coplanar to working precision. Strongly but
/// legitimately sheared cells are far above it (a 3 A cube sheared b -> b + 1000 a has 1e-3).
pub const DEGENERACY_TOLERANCE: f64 = 1e-10;

#[derive(Debug, Clone)]
pub struct Structure {
    positions: Vec<[f64; 3]>,
    cell: [[f64; 3]; 3],
    pbc: [bool; 3],
    numbers: Vec<u32>,
}

impl Structure {
    /// Validates and takes ownership. `cell` rows are the lattice vectors (Angstrom);
    /// vectors along non-periodic directions may be anything finite, including zero.
    pub fn new(
        positions: Vec<[f64; 3]>,
        cell: [[f64; 3]; 3],
        pbc: [bool; 3],
        numbers: Vec<u32>,
    ) -> Result<Self> {
        if numbers.len() != positions.len() {
            return Err(Error::invalid(format!(
                "got {} atomic numbers for {} positions",
                numbers.len(),
                positions.len()
            )));
        }
        if let Some(i) = positions
            .iter()
            .position(|p| p.iter().any(|x| !x.is_finite()))
        {
            return Err(Error::invalid(format!(
                "position of atom {i} is not finite: {:?}",
                positions[i]
            )));
        }
        if cell.iter().flatten().any(|x| !x.is_finite()) {
            return Err(Error::invalid(format!("cell is not finite: {cell:?}")));
        }
        if let Some(i) = numbers.iter().position(|&z| z > MAX_ATOMIC_NUMBER) {
            return Err(Error::invalid(format!(
                "atom {i} has atomic number {}, which is not an element",
                numbers[i]
            )));
        }
        check_periodic_lattice(&cell, pbc)?;
        Ok(Structure {
            positions,
            cell,
            pbc,
            numbers,
        })
    }

    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    pub fn positions(&self) -> &[[f64; 3]] {
        &self.positions
    }

    pub fn cell(&self) -> &[[f64; 3]; 3] {
        &self.cell
    }

    pub fn pbc(&self) -> [bool; 3] {
        self.pbc
    }

    pub fn numbers(&self) -> &[u32] {
        &self.numbers
    }
}

/// The periodic cell vectors must be non-zero and linearly independent; a left-handed cell
/// (negative determinant) is a valid lattice and is accepted, as in ASE.
fn check_periodic_lattice(cell: &[[f64; 3]; 3], pbc: [bool; 3]) -> Result<()> {
    let periodic: Vec<usize> = (0..3).filter(|&k| pbc[k]).collect();
    for &k in &periodic {
        if norm(cell[k]) == 0.0 {
            return Err(Error::invalid(format!(
                "cell vector {k} is zero but the structure is periodic along it (pbc[{k}] = True): \
                 a periodic cell must have non-zero volume"
            )));
        }
    }
    let (measure, scale, what) = match periodic.as_slice() {
        [] | [_] => return Ok(()),
        &[a, b] => (
            norm(cross(cell[a], cell[b])),
            norm(cell[a]) * norm(cell[b]),
            "area",
        ),
        _ => (
            det(cell).abs(),
            norm(cell[0]) * norm(cell[1]) * norm(cell[2]),
            "volume",
        ),
    };
    if measure <= DEGENERACY_TOLERANCE * scale {
        let unit = if what == "area" { "A^2" } else { "A^3" };
        return Err(Error::invalid(format!(
            "the periodic cell is singular: its {what} is {measure:.3e} {unit}, {:.3e} times the \
             product of the lengths of the periodic cell vectors {periodic:?} ({scale:.3e} {unit}), \
             below the threshold {DEGENERACY_TOLERANCE:.0e}; the vectors are (nearly) linearly \
             dependent, and a periodic cell must have non-zero volume; cell = {cell:?}",
            measure / scale
        )));
    }
    Ok(())
}

pub(crate) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(crate) fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

pub(crate) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub(crate) fn det(m: &[[f64; 3]; 3]) -> f64 {
    dot(m[0], cross(m[1], m[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUBE: [[f64; 3]; 3] = [[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]];

    #[test]
    fn accepts_valid_input_and_left_handed_cells() {
        assert!(Structure::new(vec![[0.0; 3]], CUBE, [true; 3], vec![14]).is_ok());
        let mut mirrored = CUBE;
        mirrored[2][2] = -3.0;
        assert!(Structure::new(vec![[0.0; 3]], mirrored, [true; 3], vec![14]).is_ok());
        // a zero cell is fine for a molecule
        assert!(Structure::new(vec![[0.0; 3]], [[0.0; 3]; 3], [false; 3], vec![1]).is_ok());
    }

    #[test]
    fn rejects_bad_input() {
        let nan = Structure::new(vec![[0.0, f64::NAN, 0.0]], CUBE, [true; 3], vec![14]);
        assert!(matches!(nan, Err(Error::InvalidInput(m)) if m.contains("atom 0")));
        let mut flat = CUBE;
        flat[2] = [3.0, 3.0, 0.0];
        assert!(Structure::new(vec![[0.0; 3]], flat, [true; 3], vec![14]).is_err());
        // the same flat cell is fine when the dependent direction is not periodic
        assert!(Structure::new(vec![[0.0; 3]], flat, [true, false, true], vec![14]).is_ok());
        let mut zero = CUBE;
        zero[1] = [0.0; 3];
        assert!(Structure::new(vec![[0.0; 3]], zero, [false, true, false], vec![14]).is_err());
        assert!(Structure::new(vec![[0.0; 3]], CUBE, [true; 3], vec![200]).is_err());
        assert!(Structure::new(vec![[0.0; 3]], CUBE, [true; 3], vec![]).is_err());
        // nearly coplanar: singular, and the message gives the volume and the threshold
        let mut thin = CUBE;
        thin[2] = [3.0, 3.0, 1e-12];
        let singular = Structure::new(vec![[0.0; 3]], thin, [true; 3], vec![14]);
        assert!(
            matches!(&singular, Err(Error::InvalidInput(m))
                if m.contains("singular") && m.contains("9.000e-12") && m.contains("1e-10")),
            "{singular:?}"
        );
        // strongly sheared but regular
        let mut sheared = CUBE;
        sheared[1] = [3000.0, 3.0, 0.0];
        assert!(Structure::new(vec![[0.0; 3]], sheared, [true; 3], vec![14]).is_ok());
        let mut inf = CUBE;
        inf[0][0] = f64::INFINITY;
        assert!(Structure::new(vec![[0.0; 3]], inf, [false; 3], vec![14]).is_err());
    }
}
