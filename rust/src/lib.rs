//! mlpot's Rust core. The numerical modules know nothing about Python, files or ASE; the
//! `python` module below only converts arguments, releases the GIL and calls them.

// mimalloc keeps freed pages for reuse. Neighbor lists and descriptor arrays are large and
// rebuilt every MD step; with the system allocator their first-touch page faults cost as much
// as the computation (measured: 77 -> 53 ms for a 64,000-atom list). Polars makes the same
// choice for the same reason.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod descriptors;
pub mod error;
pub mod linalg;
pub mod memory;
pub mod models;
pub mod neighbors;
pub mod parallel;
pub mod structure;

#[cfg(feature = "python")]
mod python {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use ndarray::{Array2, Array3};
    use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
    use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyRuntimeWarning, PyValueError};
    use pyo3::prelude::*;
    use pyo3::types::PyDict;

    use crate::descriptors::bispectrum::{Bispectrum, BispectrumParams, Gradients};
    use crate::descriptors::soap::{Soap, SoapParams};
    use crate::error::Error;
    use crate::models::kernel::{KernelPrediction, KernelRows, PairKernel, SoapKernel};
    use crate::models::linear::{design_rows, SnapModel};
    use crate::models::zbl::Zbl;
    use crate::neighbors::{
        neighbor_list as build_neighbor_list, Cutoff, ListOptions, NeighborList,
    };
    use crate::parallel;
    use crate::structure::Structure;

    fn to_py_err(e: Error) -> PyErr {
        match e {
            Error::OutOfMemory(m) => PyMemoryError::new_err(m),
            other => PyValueError::new_err(other.to_string()),
        }
    }

    /// Runs core work without the GIL, on a pool of mlpot's (see `parallel`), and turns a
    /// panic (a bug) into a RuntimeError instead of letting it unwind into Python. The first
    /// call warns (RuntimeWarning) about an unusable thread-count variable.
    fn run<T: Send>(py: Python<'_>, work: impl FnOnce() -> Result<T, Error> + Send) -> PyResult<T> {
        run_on(py, true, work)
    }

    /// `run`, on a pool when `pooled`, else on the calling thread: for work that uses no
    /// threads, where the round trip to a pool thread would cost more than the work.
    fn run_on<T: Send>(
        py: Python<'_>,
        pooled: bool,
        work: impl FnOnce() -> Result<T, Error> + Send,
    ) -> PyResult<T> {
        if let Some(warning) = parallel::take_environment_warning() {
            let category = py.get_type::<PyRuntimeWarning>();
            PyErr::warn(py, category.as_any(), &std::ffi::CString::new(warning)?, 1)?;
        }
        let outcome = py.detach(|| {
            catch_unwind(AssertUnwindSafe(|| {
                if pooled {
                    parallel::install(work).and_then(|r| r)
                } else {
                    work()
                }
            }))
        });
        match outcome {
            Ok(result) => result.map_err(to_py_err),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                Err(PyRuntimeError::new_err(format!(
                    "internal error in the mlpot core (please report it): {message}"
                )))
            }
        }
    }

    fn rows3(name: &str, a: &PyReadonlyArray2<'_, f64>) -> PyResult<Vec<[f64; 3]>> {
        let view = a.as_array();
        if view.ncols() != 3 {
            return Err(PyValueError::new_err(format!(
                "{name} must have shape (n, 3), got {:?}",
                view.shape()
            )));
        }
        Ok(view
            .rows()
            .into_iter()
            .map(|r| [r[0], r[1], r[2]])
            .collect())
    }

    fn structure_from(
        positions: &PyReadonlyArray2<'_, f64>,
        cell: &PyReadonlyArray2<'_, f64>,
        pbc: [bool; 3],
        numbers: &PyReadonlyArray1<'_, i64>,
    ) -> PyResult<Structure> {
        let positions = rows3("positions", positions)?;
        let cell_rows = rows3("cell", cell)?;
        if cell_rows.len() != 3 {
            return Err(PyValueError::new_err(format!(
                "cell must have shape (3, 3), got ({}, 3)",
                cell_rows.len()
            )));
        }
        let numbers = numbers
            .as_array()
            .iter()
            .enumerate()
            .map(|(i, &z)| {
                u32::try_from(z).map_err(|_| {
                    PyValueError::new_err(format!(
                        "atom {i} has atomic number {z}, which is not an element"
                    ))
                })
            })
            .collect::<PyResult<Vec<u32>>>()?;
        Structure::new(
            positions,
            [cell_rows[0], cell_rows[1], cell_rows[2]],
            pbc,
            numbers,
        )
        .map_err(to_py_err)
    }

    /// See `mlpot.neighbor_list`; this takes plain arrays and exactly one cutoff form.
    #[pyfunction]
    #[pyo3(signature = (positions, cell, pbc, numbers, quantities, *, cutoff=None, radii=None,
                        pair_types=None, pair_table=None, self_interaction=false))]
    #[allow(clippy::too_many_arguments)]
    fn neighbor_list<'py>(
        py: Python<'py>,
        positions: PyReadonlyArray2<'py, f64>,
        cell: PyReadonlyArray2<'py, f64>,
        pbc: [bool; 3],
        numbers: PyReadonlyArray1<'py, i64>,
        quantities: &str,
        cutoff: Option<f64>,
        radii: Option<PyReadonlyArray1<'py, f64>>,
        pair_types: Option<PyReadonlyArray1<'py, i64>>,
        pair_table: Option<PyReadonlyArray2<'py, f64>>,
        self_interaction: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        if let Some(q) = quantities.chars().find(|c| !"ijdDS".contains(*c)) {
            return Err(PyValueError::new_err(format!(
                "unsupported quantity {q:?}: choose from 'i', 'j', 'd', 'D', 'S'"
            )));
        }
        let structure = structure_from(&positions, &cell, pbc, &numbers)?;
        let cutoff = match (cutoff, radii, pair_types, pair_table) {
            (Some(rc), None, None, None) => Cutoff::Uniform(rc),
            (None, Some(r), None, None) => Cutoff::AtomRadii(r.as_array().to_vec()),
            (None, None, Some(types), Some(table)) => {
                let table = table.as_array();
                let n_types = table.nrows();
                if table.ncols() != n_types {
                    return Err(PyValueError::new_err("pair_table must be square"));
                }
                let types = types
                    .as_array()
                    .iter()
                    .map(|&t| {
                        usize::try_from(t)
                            .map_err(|_| PyValueError::new_err("pair types must be >= 0"))
                    })
                    .collect::<PyResult<Vec<usize>>>()?;
                Cutoff::TypePairs {
                    types,
                    n_types,
                    table: table.iter().cloned().collect(),
                }
            }
            _ => {
                return Err(PyValueError::new_err(
                    "give exactly one of cutoff, radii, or pair_types with pair_table",
                ))
            }
        };
        let options = ListOptions {
            self_interaction,
            shifts: quantities.contains('S'),
            extra_bytes_per_pair: output_bytes_per_pair(quantities),
        };
        let pooled = !crate::neighbors::runs_inline(structure.len());
        let list = run_on(py, pooled, || {
            build_neighbor_list(&structure, &cutoff, options)
        })?;
        neighbor_arrays(py, list, quantities)
    }

    /// Bytes per pair `neighbor_arrays` allocates on top of the list: the int64 copies of i
    /// and S (j, d and D are moved into numpy without a copy).
    fn output_bytes_per_pair(quantities: &str) -> usize {
        let i = if quantities.contains('i') { 8 } else { 0 };
        let s = if quantities.contains('S') { 24 } else { 0 };
        i + s
    }

    /// Hands the pair arrays to numpy, moving the buffers where the layout allows.
    fn neighbor_arrays<'py>(
        py: Python<'py>,
        list: NeighborList,
        quantities: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let n_pairs = list.n_pairs();
        let what = |name: &str| format!("the {name} array of a neighbor list of {n_pairs} pairs");
        crate::memory::ensure_fits(
            (n_pairs * output_bytes_per_pair(quantities)) as u128,
            &what("i and S"),
        )
        .map_err(to_py_err)?;
        if quantities.contains('i') {
            let mut i = crate::memory::try_large_vec(n_pairs, &what("i")).map_err(to_py_err)?;
            for (atom, w) in list.offsets.windows(2).enumerate() {
                i.resize(w[1], atom as i64);
            }
            out.set_item("i", i.into_pyarray(py))?;
        }
        if quantities.contains('S') {
            let mut s =
                crate::memory::try_large_vec::<i64>(3 * n_pairs, &what("S")).map_err(to_py_err)?;
            s.extend(list.shifts.iter().flat_map(|s| s.map(i64::from)));
            out.set_item(
                "S",
                Array2::from_shape_vec((n_pairs, 3), s)
                    .unwrap()
                    .into_pyarray(py),
            )?;
        }
        if quantities.contains('d') {
            out.set_item("d", list.distances.into_pyarray(py))?;
        }
        if quantities.contains('D') {
            let flat = flatten_triples(list.vectors);
            out.set_item(
                "D",
                Array2::from_shape_vec((n_pairs, 3), flat)
                    .unwrap()
                    .into_pyarray(py),
            )?;
        }
        if quantities.contains('j') {
            // usize -> i64 has the same size, so this collect reuses the allocation
            let j: Vec<i64> = list.neighbors.into_iter().map(|j| j as i64).collect();
            out.set_item("j", j.into_pyarray(py))?;
        }
        Ok(out)
    }

    /// Reinterprets a Vec of triples as a flat Vec without copying.
    fn flatten_triples<T: Copy>(v: Vec<[T; 3]>) -> Vec<T> {
        let mut v = std::mem::ManuallyDrop::new(v);
        let (ptr, len, cap) = (v.as_mut_ptr(), v.len(), v.capacity());
        // SAFETY: [T; 3] has exactly the size of three T and the alignment of T, so the
        // allocation of `cap` triples is a valid allocation of `3 * cap` T with the same layout.
        unsafe { Vec::from_raw_parts(ptr as *mut T, len * 3, cap * 3) }
    }

    /// A validated structure, converted once and passed to the descriptors.
    #[pyclass(name = "Structure", module = "mlpot._core", frozen)]
    struct PyStructure {
        inner: Structure,
    }

    #[pymethods]
    impl PyStructure {
        #[new]
        fn new(
            positions: PyReadonlyArray2<'_, f64>,
            cell: PyReadonlyArray2<'_, f64>,
            pbc: [bool; 3],
            numbers: PyReadonlyArray1<'_, i64>,
        ) -> PyResult<Self> {
            Ok(PyStructure {
                inner: structure_from(&positions, &cell, pbc, &numbers)?,
            })
        }

        fn __len__(&self) -> usize {
            self.inner.len()
        }
    }

    /// The SNAP bispectrum; see `mlpot.Bispectrum`, which validates and documents the arguments.
    #[pyclass(name = "Bispectrum", module = "mlpot._core", frozen)]
    struct PyBispectrum {
        inner: Bispectrum,
    }

    #[pymethods]
    impl PyBispectrum {
        #[new]
        #[pyo3(signature = (twojmax, rcutfac, rfac0, rmin0, species, radelem, wj, switchflag,
                            bzeroflag, chemflag, bnormflag, wselfallflag))]
        #[allow(clippy::too_many_arguments)]
        fn new(
            twojmax: i64,
            rcutfac: f64,
            rfac0: f64,
            rmin0: f64,
            species: Vec<u32>,
            radelem: Vec<f64>,
            wj: Vec<f64>,
            switchflag: bool,
            bzeroflag: bool,
            chemflag: bool,
            bnormflag: bool,
            wselfallflag: bool,
        ) -> PyResult<Self> {
            let twojmax = usize::try_from(twojmax).map_err(|_| {
                PyValueError::new_err(format!("twojmax must be >= 0, got {twojmax}"))
            })?;
            let params = BispectrumParams {
                twojmax,
                rcutfac,
                rfac0,
                rmin0,
                species,
                radelem,
                wj,
                switchflag,
                bzeroflag,
                chemflag,
                bnormflag,
                wselfallflag,
            };
            Ok(PyBispectrum {
                inner: Bispectrum::new(params).map_err(to_py_err)?,
            })
        }

        #[getter]
        fn n_features(&self) -> usize {
            self.inner.n_features()
        }

        /// (n_atoms, n_features)
        fn compute<'py>(
            &self,
            py: Python<'py>,
            structure: &PyStructure,
        ) -> PyResult<Bound<'py, PyArray2<f64>>> {
            let structure = &structure.inner;
            let n = structure.len();
            let b = run(py, || self.inner.compute(structure))?;
            Ok(matrix(b, n, self.inner.n_features()).into_pyarray(py))
        }

        /// dict with descriptors (n_atoms, n_features), centers and atoms (n_rows,), values
        /// (n_rows, 3, n_features) and virial (n_atoms, 6, n_features).
        fn compute_gradients<'py>(
            &self,
            py: Python<'py>,
            structure: &PyStructure,
        ) -> PyResult<Bound<'py, PyDict>> {
            let structure = &structure.inner;
            let g = run(py, || self.inner.compute_with_gradients(structure))?;
            gradients_dict(py, g, structure.len(), self.inner.n_features())
        }

        /// (descriptors (n_atoms, n_features), forces (n_atoms, 3), virial (6,)) for
        /// E = sum beta * B.
        fn adjoint<'py>(
            &self,
            py: Python<'py>,
            structure: &PyStructure,
            beta: PyReadonlyArray2<'py, f64>,
        ) -> PyResult<AdjointArrays<'py>> {
            let structure = &structure.inner;
            let n = structure.len();
            let nf = self.inner.n_features();
            let beta_view = beta.as_array();
            if beta_view.shape() != [n, nf] {
                return Err(PyValueError::new_err(format!(
                    "beta must have shape (n_atoms, n_features) = ({n}, {nf}), got {:?}",
                    beta_view.shape()
                )));
            }
            let beta: Vec<f64> = beta_view.iter().cloned().collect();
            let a = run(py, || self.inner.adjoint(structure, &beta))?;
            let forces = Array2::from_shape_vec((n, 3), flatten_triples(a.forces)).unwrap();
            Ok((
                matrix(a.descriptors, n, nf).into_pyarray(py),
                forces.into_pyarray(py),
                a.virial.to_vec().into_pyarray(py),
            ))
        }
    }

    /// The SOAP power spectrum; see `mlpot.SOAP`, which validates and documents the arguments.
    #[pyclass(name = "SOAP", module = "mlpot._core", frozen)]
    struct PySoap {
        inner: Soap,
    }

    #[pymethods]
    impl PySoap {
        #[new]
        #[pyo3(signature = (cutoff, n_max, l_max, atom_sigma, cutoff_transition_width, species,
                            center_atom_weight, normalize))]
        #[allow(clippy::too_many_arguments)]
        fn new(
            py: Python<'_>,
            cutoff: f64,
            n_max: i64,
            l_max: i64,
            atom_sigma: f64,
            cutoff_transition_width: f64,
            species: Vec<u32>,
            center_atom_weight: f64,
            normalize: bool,
        ) -> PyResult<Self> {
            let n_max = usize::try_from(n_max)
                .map_err(|_| PyValueError::new_err(format!("n_max must be >= 1, got {n_max}")))?;
            let l_max = usize::try_from(l_max)
                .map_err(|_| PyValueError::new_err(format!("l_max must be >= 0, got {l_max}")))?;
            let params = SoapParams {
                cutoff,
                n_max,
                l_max,
                atom_sigma,
                cutoff_transition_width,
                species,
                center_atom_weight,
                normalize,
            };
            // building the radial table takes milliseconds: release the GIL
            let inner = run(py, || Soap::new(params))?;
            Ok(PySoap { inner })
        }

        #[getter]
        fn n_features(&self) -> usize {
            self.inner.n_features()
        }

        /// Atomic numbers in feature order (sorted).
        #[getter]
        fn species(&self) -> Vec<u32> {
            self.inner.params().species.clone()
        }

        /// (n_atoms, n_features)
        fn compute<'py>(
            &self,
            py: Python<'py>,
            structure: &PyStructure,
        ) -> PyResult<Bound<'py, PyArray2<f64>>> {
            let structure = &structure.inner;
            let n = structure.len();
            let p = run(py, || self.inner.compute(structure))?;
            Ok(matrix(p, n, self.inner.n_features()).into_pyarray(py))
        }

        /// dict with descriptors (n_atoms, n_features), centers and atoms (n_rows,), values
        /// (n_rows, 3, n_features) and virial (n_atoms, 6, n_features).
        fn compute_gradients<'py>(
            &self,
            py: Python<'py>,
            structure: &PyStructure,
        ) -> PyResult<Bound<'py, PyDict>> {
            let structure = &structure.inner;
            let g = run(py, || self.inner.compute_with_gradients(structure))?;
            gradients_dict(py, g, structure.len(), self.inner.n_features())
        }
    }

    /// The arrays of descriptor gradients as a dict of numpy arrays, moving the buffers.
    fn gradients_dict(
        py: Python<'_>,
        g: Gradients,
        n_atoms: usize,
        nf: usize,
    ) -> PyResult<Bound<'_, PyDict>> {
        let n_rows = g.centers.len();
        let out = PyDict::new(py);
        out.set_item(
            "descriptors",
            matrix(g.descriptors, n_atoms, nf).into_pyarray(py),
        )?;
        let index = |v: Vec<usize>| v.into_iter().map(|x| x as i64).collect::<Vec<i64>>();
        out.set_item("centers", index(g.centers).into_pyarray(py))?;
        out.set_item("atoms", index(g.atoms).into_pyarray(py))?;
        let values = Array3::from_shape_vec((n_rows, 3, nf), g.values).unwrap();
        out.set_item("values", values.into_pyarray(py))?;
        let virial = Array3::from_shape_vec((n_atoms, 6, nf), g.virial).unwrap();
        out.set_item("virial", virial.into_pyarray(py))?;
        Ok(out)
    }

    /// (descriptors, forces, virial) of `Bispectrum.adjoint`.
    type AdjointArrays<'py> = (
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray1<f64>>,
    );

    /// ZBL repulsion; see `mlpot.baselines.ZBL`, which documents the units and conventions.
    #[pyclass(name = "ZBL", module = "mlpot._core", frozen)]
    struct PyZbl {
        inner: Zbl,
    }

    #[pymethods]
    impl PyZbl {
        #[new]
        fn new(inner: f64, outer: f64) -> PyResult<Self> {
            Ok(PyZbl {
                inner: Zbl::new(inner, outer).map_err(to_py_err)?,
            })
        }

        /// (energies (n_atoms,), forces (n_atoms, 3), virials (n_atoms, 6)).
        fn compute<'py>(
            &self,
            py: Python<'py>,
            structure: &PyStructure,
        ) -> PyResult<ZblArrays<'py>> {
            let structure = &structure.inner;
            let n = structure.len();
            let out = run(py, || self.inner.compute(structure))?;
            let forces = matrix(flatten_triples(out.forces), n, 3);
            let virials: Vec<f64> = out.virials.into_iter().flatten().collect();
            Ok((
                out.energies.into_pyarray(py),
                forces.into_pyarray(py),
                matrix(virials, n, 6).into_pyarray(py),
            ))
        }
    }

    /// (energies, forces, virials) of `ZBL.compute`.
    type ZblArrays<'py> = (
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray2<f64>>,
    );

    fn matrix(v: Vec<f64>, rows: usize, cols: usize) -> Array2<f64> {
        Array2::from_shape_vec((rows, cols), v).unwrap()
    }

    /// dict with energy (n_columns,), forces (3 n_atoms, n_columns) and virial
    /// (6, n_columns): the design rows of one structure for (quadratic) SNAP.
    #[pyfunction]
    fn snap_design_rows<'py>(
        py: Python<'py>,
        bispectrum: &PyBispectrum,
        structure: &PyStructure,
        quadratic: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (bs, s) = (&bispectrum.inner, &structure.inner);
        let rows = run(py, || design_rows(bs, s, quadratic))?;
        let n = rows.n_columns;
        let out = PyDict::new(py);
        out.set_item("energy", rows.energy.into_pyarray(py))?;
        out.set_item(
            "forces",
            matrix(rows.forces, 3 * s.len(), n).into_pyarray(py),
        )?;
        out.set_item("virial", matrix(rows.virial, 6, n).into_pyarray(py))?;
        Ok(out)
    }

    /// (energies, forces, virial) of `SnapModel.predict`.
    type PredictionArrays<'py> = (
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray1<f64>>,
    );

    /// A SNAP or quadratic SNAP potential; see `mlpot.SNAP`.
    #[pyclass(name = "SnapModel", module = "mlpot._core", frozen)]
    struct PySnapModel {
        inner: SnapModel,
    }

    #[pymethods]
    impl PySnapModel {
        #[new]
        fn new(
            bispectrum: &PyBispectrum,
            quadratic: bool,
            coefficients: PyReadonlyArray2<'_, f64>,
        ) -> PyResult<Self> {
            let c: Vec<f64> = coefficients.as_array().iter().cloned().collect();
            Ok(PySnapModel {
                inner: SnapModel::new(bispectrum.inner.clone(), quadratic, c).map_err(to_py_err)?,
            })
        }

        /// (energies (n_atoms,), forces (n_atoms, 3), virial (6,))
        fn predict<'py>(
            &self,
            py: Python<'py>,
            structure: &PyStructure,
        ) -> PyResult<PredictionArrays<'py>> {
            let s = &structure.inner;
            let p = run(py, || self.inner.predict(s))?;
            let forces = Array2::from_shape_vec((s.len(), 3), flatten_triples(p.forces)).unwrap();
            Ok((
                p.energies.into_pyarray(py),
                forces.into_pyarray(py),
                p.virial.to_vec().into_pyarray(py),
            ))
        }
    }

    /// dict with energy (n_columns,), forces (3 n_atoms, n_columns), virial (6, n_columns).
    fn kernel_rows_dict(
        py: Python<'_>,
        rows: KernelRows,
        n_atoms: usize,
    ) -> PyResult<Bound<'_, PyDict>> {
        let n = rows.n_columns;
        let out = PyDict::new(py);
        out.set_item("energy", rows.energy.into_pyarray(py))?;
        out.set_item(
            "forces",
            matrix(rows.forces, 3 * n_atoms, n).into_pyarray(py),
        )?;
        out.set_item("virial", matrix(rows.virial, 6, n).into_pyarray(py))?;
        Ok(out)
    }

    /// (energies (n_atoms,), forces (n_atoms, 3), virial (6,), kernel (n_atoms, n_sparse) or
    /// None).
    type KernelPredictionArrays<'py> = (
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray1<f64>>,
        Option<Bound<'py, PyArray2<f64>>>,
    );

    fn kernel_prediction_arrays(
        py: Python<'_>,
        p: KernelPrediction,
        n_atoms: usize,
        n_sparse: usize,
    ) -> KernelPredictionArrays<'_> {
        let forces = matrix(flatten_triples(p.prediction.forces), n_atoms, 3);
        (
            p.prediction.energies.into_pyarray(py),
            forces.into_pyarray(py),
            p.prediction.virial.to_vec().into_pyarray(py),
            p.kernel
                .map(|k| matrix(k, n_atoms, n_sparse).into_pyarray(py)),
        )
    }

    /// One GAP kernel term (SOAP or distance_2b) with its sparse points; see `mlpot.GAP`.
    #[pyclass(name = "KernelTerm", module = "mlpot._core", frozen)]
    struct PyKernelTerm {
        inner: Term,
    }

    enum Term {
        Soap(SoapKernel),
        Pair(PairKernel),
    }

    #[pymethods]
    impl PyKernelTerm {
        /// Dot-product kernel on normalised SOAP to the power zeta.
        #[staticmethod]
        fn soap(
            soap: &PySoap,
            zeta: f64,
            delta: f64,
            sparse: PyReadonlyArray2<'_, f64>,
            sparse_species: Vec<u32>,
        ) -> PyResult<Self> {
            let x: Vec<f64> = sparse.as_array().iter().cloned().collect();
            let k = SoapKernel::new(soap.inner.clone(), zeta, delta, x, &sparse_species)
                .map_err(to_py_err)?;
            Ok(PyKernelTerm {
                inner: Term::Soap(k),
            })
        }

        /// gap_fit's distance_2b with a squared-exponential kernel.
        #[staticmethod]
        #[pyo3(signature = (cutoff, cutoff_transition_width, theta, delta, sparse, species=None))]
        fn pair(
            cutoff: f64,
            cutoff_transition_width: f64,
            theta: f64,
            delta: f64,
            sparse: Vec<f64>,
            species: Option<(u32, u32)>,
        ) -> PyResult<Self> {
            let k = PairKernel::new(
                cutoff,
                cutoff_transition_width,
                theta,
                delta,
                sparse,
                species,
            )
            .map_err(to_py_err)?;
            Ok(PyKernelTerm {
                inner: Term::Pair(k),
            })
        }

        #[getter]
        fn n_sparse(&self) -> usize {
            match &self.inner {
                Term::Soap(k) => k.n_sparse(),
                Term::Pair(k) => k.n_sparse(),
            }
        }

        /// dict with energy (n_sparse,), forces (3 n_atoms, n_sparse), virial (6, n_sparse).
        fn rows<'py>(
            &self,
            py: Python<'py>,
            structure: &PyStructure,
        ) -> PyResult<Bound<'py, PyDict>> {
            let s = &structure.inner;
            let rows = run(py, || match &self.inner {
                Term::Soap(k) => k.rows(s),
                Term::Pair(k) => k.rows(s),
            })?;
            kernel_rows_dict(py, rows, s.len())
        }

        fn predict<'py>(
            &self,
            py: Python<'py>,
            structure: &PyStructure,
            alpha: PyReadonlyArray1<'py, f64>,
            with_kernel: bool,
        ) -> PyResult<KernelPredictionArrays<'py>> {
            let s = &structure.inner;
            let alpha = alpha.as_array().to_vec();
            let p = run(py, || match &self.inner {
                Term::Soap(k) => k.predict(s, &alpha, with_kernel),
                Term::Pair(k) => k.predict(s, &alpha, with_kernel),
            })?;
            Ok(kernel_prediction_arrays(py, p, s.len(), self.n_sparse()))
        }
    }

    /// See `mlpot.set_num_threads`; a negative or absurd `n` is a ValueError.
    #[pyfunction]
    fn set_num_threads(py: Python<'_>, n: i64) -> PyResult<()> {
        py.detach(|| parallel::set_num_threads(n))
            .map_err(to_py_err)
    }

    #[pyfunction]
    fn get_num_threads() -> usize {
        parallel::num_threads()
    }

    #[pymodule]
    #[pyo3(name = "_core")]
    fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add_function(wrap_pyfunction!(neighbor_list, m)?)?;
        m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
        m.add_class::<PyStructure>()?;
        m.add_class::<PyBispectrum>()?;
        m.add_class::<PySoap>()?;
        m.add_class::<PyZbl>()?;
        m.add_class::<PySnapModel>()?;
        m.add_class::<PyKernelTerm>()?;
        m.add_function(wrap_pyfunction!(snap_design_rows, m)?)?;
        m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
        Ok(())
    }
}
