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
#[cfg(test)]
pub(crate) mod test_support;

#[cfg(feature = "python")]
mod python {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use ndarray::{Array2, Array3};
    use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
    use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyRuntimeWarning, PyValueError};
    use pyo3::prelude::*;
    use pyo3::types::PyDict;

    use std::sync::Arc;

    use crate::descriptors::{self, Descriptor, DescriptorExt, Gradients};
    use crate::error::Error;
    use crate::models::kernel::{DotProductKernel, PairKernel};
    use crate::models::linear::LinearTerm;
    use crate::models::network::training::kalman::{KalmanFilter, KalmanParams, Member, Update};
    use crate::models::network::training::{Functional, TrainingSet};
    use crate::models::network::{Network, NetworkTerm};
    use crate::models::zbl::Zbl;
    use crate::models::{self, Prediction, Rows, Term};
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

    /// Any descriptor of the core, built by kind from its parameters as JSON (the serde
    /// struct of that descriptor); see `mlpot.Bispectrum`, `mlpot.SOAP`, which validate and
    /// document the parameters.
    #[pyclass(name = "Descriptor", module = "mlpot._core", frozen)]
    struct PyDescriptor {
        inner: Arc<dyn Descriptor>,
    }

    #[pymethods]
    impl PyDescriptor {
        #[new]
        fn new(py: Python<'_>, kind: &str, params: &str) -> PyResult<Self> {
            // building tables (the SOAP radial spline) takes milliseconds: release the GIL
            let inner = run(py, || descriptors::from_json(kind, params))?;
            Ok(PyDescriptor { inner })
        }

        #[getter]
        fn kind(&self) -> &'static str {
            self.inner.kind()
        }

        #[getter]
        fn n_features(&self) -> usize {
            self.inner.n_features()
        }

        /// Atomic numbers in the order of the descriptor's species indices.
        #[getter]
        fn species(&self) -> Vec<u32> {
            self.inner.species().to_vec()
        }

        /// (n_atoms, n_features)
        fn compute<'py>(
            &self,
            py: Python<'py>,
            structure: &PyStructure,
        ) -> PyResult<Bound<'py, PyArray2<f64>>> {
            let structure = &structure.inner;
            let n = structure.len();
            let x = run(py, || self.inner.compute(structure))?;
            Ok(matrix(x, n, self.inner.n_features()).into_pyarray(py))
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
        /// E = sum de_dx * X.
        fn backprop<'py>(
            &self,
            py: Python<'py>,
            structure: &PyStructure,
            de_dx: PyReadonlyArray2<'py, f64>,
        ) -> PyResult<BackpropArrays<'py>> {
            let structure = &structure.inner;
            let (n, nf) = (structure.len(), self.inner.n_features());
            let view = de_dx.as_array();
            if view.shape() != [n, nf] {
                return Err(PyValueError::new_err(format!(
                    "dE/dX must have shape (n_atoms, n_features) = ({n}, {nf}), got {:?}",
                    view.shape()
                )));
            }
            let de_dx: Vec<f64> = view.iter().cloned().collect();
            let b = run(py, || self.inner.backprop(structure, &de_dx))?;
            let forces = matrix(flatten_triples(b.forces), n, 3);
            Ok((
                matrix(b.descriptors, n, nf).into_pyarray(py),
                forces.into_pyarray(py),
                b.virial.to_vec().into_pyarray(py),
            ))
        }

        /// dX (n_atoms, n_features) along the displacement field (n_atoms, 3).
        fn forward<'py>(
            &self,
            py: Python<'py>,
            structure: &PyStructure,
            displacement: PyReadonlyArray2<'py, f64>,
        ) -> PyResult<Bound<'py, PyArray2<f64>>> {
            let structure = &structure.inner;
            let u = rows3("displacement", &displacement)?;
            let n = structure.len();
            let dx = run(py, || self.inner.forward(structure, &u))?;
            Ok(matrix(dx, n, self.inner.n_features()).into_pyarray(py))
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

    /// (descriptors, forces, virial) of `Descriptor.backprop`.
    type BackpropArrays<'py> = (
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

    /// dict with energy (n_columns,), forces (3 n_atoms, n_columns), virial (6, n_columns).
    fn rows_dict(py: Python<'_>, rows: Rows, n_atoms: usize) -> PyResult<Bound<'_, PyDict>> {
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

    /// (energies (n_atoms,), forces (n_atoms, 3), virial (6,)).
    type PredictionArrays<'py> = (
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray1<f64>>,
    );

    fn prediction_arrays(py: Python<'_>, p: Prediction) -> PredictionArrays<'_> {
        let n = p.energies.len();
        (
            p.energies.into_pyarray(py),
            matrix(flatten_triples(p.forces), n, 3).into_pyarray(py),
            p.virial.to_vec().into_pyarray(py),
        )
    }

    /// One term of a model (`models::Term`): a linear one with the rows of a structure for a
    /// fit and the prediction for given weights, or one that owns its parameters (ZBL, neural
    /// networks: no weights). See `mlpot.SNAP`, `mlpot.GAP` and `mlpot.baselines.ZBL`.
    #[pyclass(name = "Term", module = "mlpot._core", frozen)]
    struct PyTerm {
        inner: Arc<dyn Term>,
        /// The same term when it is a neural-network term, for `network_outputs`.
        network: Option<Arc<NetworkTerm>>,
    }

    fn term(t: impl Term + 'static) -> PyTerm {
        PyTerm {
            inner: Arc::new(t),
            network: None,
        }
    }

    #[pymethods]
    impl PyTerm {
        /// The linear (quadratic: and quadratic) model on a descriptor: SNAP on the
        /// bispectrum. Weights: one snapcoeff block per element.
        #[staticmethod]
        fn linear(descriptor: &PyDescriptor, quadratic: bool) -> PyResult<Self> {
            let t = LinearTerm::new(descriptor.inner.clone(), quadratic).map_err(to_py_err)?;
            Ok(term(t))
        }

        /// The dot-product kernel to the power zeta against sparse points (n_sparse,
        /// n_features) of the given central atomic numbers. Weights: one per sparse point.
        #[staticmethod]
        fn dot_product(
            py: Python<'_>,
            descriptor: &PyDescriptor,
            zeta: f64,
            delta: f64,
            sparse: PyReadonlyArray2<'_, f64>,
            sparse_species: Vec<u32>,
        ) -> PyResult<Self> {
            let x: Vec<f64> = sparse.as_array().iter().cloned().collect();
            let d = descriptor.inner.clone();
            let k = run(py, || {
                DotProductKernel::new(d, zeta, delta, x, &sparse_species)
            })?;
            Ok(term(k))
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
            Ok(term(k))
        }

        /// The ZBL repulsion as a fixed term (no weights).
        #[staticmethod]
        fn zbl(inner: f64, outer: f64) -> PyResult<Self> {
            Ok(term(Zbl::new(inner, outer).map_err(to_py_err)?))
        }

        /// Behler-Parrinello atomic neural networks on a descriptor, one per species, from
        /// their JSON (`models::network::NetworksSpec`). No weights: the term owns them.
        #[staticmethod]
        fn network(
            py: Python<'_>,
            descriptor: &PyDescriptor,
            networks_json: &str,
        ) -> PyResult<Self> {
            let d = descriptor.inner.clone();
            let t = Arc::new(run_on(py, false, || {
                NetworkTerm::from_json(d, networks_json)
            })?);
            Ok(PyTerm {
                inner: t.clone(),
                network: Some(t),
            })
        }

        /// A network term's network of atomic number `species` on raw features (n, n_in):
        /// (energies (n,), dE/dfeatures (n, n_in)).
        fn network_outputs<'py>(
            &self,
            py: Python<'py>,
            species: u32,
            features: PyReadonlyArray2<'py, f64>,
        ) -> PyResult<NetworkOutputArrays<'py>> {
            let t = self.network.as_ref().ok_or_else(|| {
                PyValueError::new_err("network_outputs: this term is not a neural-network term")
            })?;
            let view = features.as_array();
            let (n, n_in) = (view.nrows(), view.ncols());
            let expected = t.network(species).map(|net| net.n_in());
            if let Some(m) = expected.filter(|&m| m != n_in) {
                return Err(PyValueError::new_err(format!(
                    "features must have shape (n, {m}) for the network of atomic number \
                     {species}, got {:?}",
                    view.shape()
                )));
            }
            let x: Vec<f64> = view.iter().cloned().collect();
            let (e, g) = run(py, || t.network_outputs(species, &x))?;
            Ok((e.into_pyarray(py), matrix(g, n, n_in).into_pyarray(py)))
        }

        /// Members of a network term's committee.
        #[getter]
        fn n_members(&self) -> PyResult<usize> {
            Ok(self.network_term("n_members")?.n_members())
        }

        /// Each committee member's prediction from one descriptor pass: (energies (K,
        /// n_atoms), forces (K, n_atoms, 3), virial (K, 6)).
        fn predict_members<'py>(
            &self,
            py: Python<'py>,
            structure: &PyStructure,
        ) -> PyResult<MemberArrays<'py>> {
            let t = self.network_term("predict_members")?;
            let s = &structure.inner;
            let members = run(py, || {
                let list = models::shared_list(s, &[t.as_ref() as &dyn Term])?;
                t.predict_members(s, &list)
            })?;
            let (k, n) = (members.len(), s.len());
            let mut e = Vec::with_capacity(k * n);
            let mut f = Vec::with_capacity(k * n * 3);
            let mut v = Vec::with_capacity(k * 6);
            for m in members {
                e.extend_from_slice(&m.energies);
                f.extend(m.forces.iter().flatten());
                v.extend_from_slice(&m.virial);
            }
            Ok((
                matrix(e, k, n).into_pyarray(py),
                Array3::from_shape_vec((k, n, 3), f)
                    .unwrap()
                    .into_pyarray(py),
                matrix(v, k, 6).into_pyarray(py),
            ))
        }

        #[getter]
        fn n_columns(&self) -> usize {
            self.inner.n_columns()
        }

        /// dict with energy (n_columns,), forces (3 n_atoms, n_columns), virial (6, n_columns).
        fn rows<'py>(
            &self,
            py: Python<'py>,
            structure: &PyStructure,
        ) -> PyResult<Bound<'py, PyDict>> {
            let s = &structure.inner;
            let rows = run(py, || models::rows_terms(&[self.inner.as_ref()], s))?;
            rows_dict(py, rows.into_iter().next().unwrap(), s.len())
        }

        /// (energies (n_atoms,), forces (n_atoms, 3), virial (6,), per-atom rows (n_atoms,
        /// n_columns) or None).
        fn predict<'py>(
            &self,
            py: Python<'py>,
            structure: &PyStructure,
            weights: PyReadonlyArray1<'py, f64>,
            with_rows: bool,
        ) -> PyResult<TermPredictionArrays<'py>> {
            let s = &structure.inner;
            let w = weights.as_array().to_vec();
            let (p, mut rows) = run(py, || {
                models::predict_terms(&[self.inner.as_ref()], s, &[&w], with_rows)
            })?;
            let rows = rows.pop().flatten();
            let (e, f, v) = prediction_arrays(py, p);
            let m = self.inner.n_columns();
            Ok((
                e,
                f,
                v,
                rows.map(|r| matrix(r, s.len(), m).into_pyarray(py)),
            ))
        }
    }

    impl PyTerm {
        fn network_term(&self, what: &str) -> PyResult<&Arc<NetworkTerm>> {
            self.network.as_ref().ok_or_else(|| {
                PyValueError::new_err(format!("{what}: this term is not a neural-network term"))
            })
        }

        /// The term's networks (its first member's) with the weights `theta` (the networks'
        /// parameters concatenated in species order).
        fn networks_with(&self, theta: &[f64]) -> PyResult<Vec<Network>> {
            let t = self.network_term("training")?;
            let mut nets = t.training_networks().map_err(to_py_err)?;
            let (offsets, total) = TrainingSet::parameter_offsets(&nets);
            if theta.len() != total {
                return Err(PyValueError::new_err(format!(
                    "the networks have {total} weights, got {}",
                    theta.len()
                )));
            }
            for (n, o) in nets.iter_mut().zip(offsets) {
                let m = n.n_parameters();
                n.set_parameters(&theta[o..o + m]).map_err(to_py_err)?;
            }
            Ok(nets)
        }
    }

    /// (energies, forces, virial) of every member of a committee.
    type MemberArrays<'py> = (
        Bound<'py, PyArray2<f64>>,
        Bound<'py, numpy::PyArray3<f64>>,
        Bound<'py, PyArray2<f64>>,
    );

    /// Descriptors of training frames with their gradients, cached for training networks
    /// (`models::network::training::TrainingSet`).
    #[pyclass(name = "NetworkTraining", module = "mlpot._core", frozen)]
    struct PyNetworkTraining {
        inner: Arc<TrainingSet>,
    }

    /// (energies (m,), forces (atoms of the m frames, 3), virials (m, 6)).
    type FrameArrays<'py> = (
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray2<f64>>,
    );

    fn frame_indices(frames: &PyReadonlyArray1<'_, i64>) -> PyResult<Vec<usize>> {
        frames
            .as_array()
            .iter()
            .map(|&f| {
                usize::try_from(f)
                    .map_err(|_| PyValueError::new_err(format!("frame index {f} is negative")))
            })
            .collect()
    }

    #[pymethods]
    impl PyNetworkTraining {
        /// Caches the descriptors of `structures` trimmed to `n_inputs[s]` features for
        /// species index s, with the per-atom virials where `stress[f]`.
        #[new]
        fn new(
            py: Python<'_>,
            descriptor: &PyDescriptor,
            n_inputs: Vec<usize>,
            structures: Vec<PyRef<'_, PyStructure>>,
            stress: Vec<bool>,
        ) -> PyResult<Self> {
            let d = descriptor.inner.clone();
            let s: Vec<Structure> = structures.iter().map(|s| s.inner.clone()).collect();
            let set = run(py, || TrainingSet::new(d, n_inputs, &s, &stress))?;
            Ok(PyNetworkTraining {
                inner: Arc::new(set),
            })
        }

        #[getter]
        fn n_frames(&self) -> usize {
            self.inner.n_frames()
        }

        /// Atoms per frame.
        fn n_atoms<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
            let t = &self.inner;
            let n: Vec<i64> = (0..t.n_frames()).map(|f| t.n_atoms(f) as i64).collect();
            n.into_pyarray(py)
        }

        /// The species index of every atom of every frame, concatenated.
        fn types<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
            let t = &self.inner;
            let v: Vec<i64> = (0..t.n_frames())
                .flat_map(|f| t.types(f).iter().map(|&x| x as i64))
                .collect();
            v.into_pyarray(py)
        }

        /// Raw features (n, n_inputs[s]) of the atoms of species index s in `frames`.
        fn features<'py>(
            &self,
            py: Python<'py>,
            species_index: usize,
            frames: PyReadonlyArray1<'py, i64>,
        ) -> PyResult<Bound<'py, PyArray2<f64>>> {
            let t = &self.inner;
            let m = *t.n_inputs().get(species_index).ok_or_else(|| {
                PyValueError::new_err(format!("no species index {species_index}"))
            })?;
            let frames = frame_indices(&frames)?;
            let x = run(py, || t.features(species_index, &frames))?;
            let n = x.len() / m;
            Ok(matrix(x, n, m).into_pyarray(py))
        }

        /// Energies, forces and virials of `frames` with the networks of `term` at the
        /// weights `theta`.
        fn predict<'py>(
            &self,
            py: Python<'py>,
            term: &PyTerm,
            theta: PyReadonlyArray1<'py, f64>,
            frames: PyReadonlyArray1<'py, i64>,
        ) -> PyResult<FrameArrays<'py>> {
            let nets = term.networks_with(theta.as_slice()?)?;
            let frames = frame_indices(&frames)?;
            let t = &self.inner;
            let p = run(py, || t.predict(&nets, &frames))?;
            let m = p.len();
            let energies: Vec<f64> = p.iter().map(|p| p.energy).collect();
            let forces: Vec<f64> = p
                .iter()
                .flat_map(|p| p.forces.iter().flatten().copied())
                .collect();
            let n = forces.len() / 3;
            let virials: Vec<f64> = p.iter().flat_map(|p| p.virial).collect();
            Ok((
                energies.into_pyarray(py),
                matrix(forces, n, 3).into_pyarray(py),
                matrix(virials, m, 6).into_pyarray(py),
            ))
        }

        /// (sum_f h_f, d/dtheta sum_f h_f) for h_f = alpha_f E_f + sum_k d_k . dE_f/dr_k +
        /// c_f . W_f over `frames`: alpha (m,), displacement (atoms of the m frames, 3) or
        /// None, virial directions c (m, 6) or None.
        #[pyo3(signature = (term, theta, frames, alpha, displacement=None, virial=None))]
        #[allow(clippy::too_many_arguments)]
        fn gradient<'py>(
            &self,
            py: Python<'py>,
            term: &PyTerm,
            theta: PyReadonlyArray1<'py, f64>,
            frames: PyReadonlyArray1<'py, i64>,
            alpha: PyReadonlyArray1<'py, f64>,
            displacement: Option<PyReadonlyArray2<'py, f64>>,
            virial: Option<PyReadonlyArray2<'py, f64>>,
        ) -> PyResult<(f64, Bound<'py, PyArray1<f64>>)> {
            let nets = term.networks_with(theta.as_slice()?)?;
            let frames = frame_indices(&frames)?;
            let t = &self.inner;
            t.check_frames(&frames).map_err(to_py_err)?;
            let m = frames.len();
            let alpha = alpha.as_array().to_vec();
            if alpha.len() != m {
                return Err(PyValueError::new_err(format!(
                    "alpha needs one value per frame ({m}), got {}",
                    alpha.len()
                )));
            }
            let d = match &displacement {
                Some(d) => rows3("displacement", d)?,
                None => Vec::new(),
            };
            let atoms: usize = frames.iter().map(|&f| t.n_atoms(f)).sum();
            if displacement.is_some() && d.len() != atoms {
                return Err(PyValueError::new_err(format!(
                    "displacement must have shape ({atoms}, 3) for these frames, got ({}, 3)",
                    d.len()
                )));
            }
            let c: Vec<[f64; 6]> = match &virial {
                Some(v) => {
                    let v = v.as_array();
                    if v.shape() != [m, 6] {
                        return Err(PyValueError::new_err(format!(
                            "virial must have shape ({m}, 6), got {:?}",
                            v.shape()
                        )));
                    }
                    v.rows()
                        .into_iter()
                        .map(|r| std::array::from_fn(|k| r[k]))
                        .collect()
                }
                None => vec![[0.0; 6]; m],
            };
            let mut hs = Vec::with_capacity(m);
            let mut start = 0;
            for (k, &f) in frames.iter().enumerate() {
                let n = t.n_atoms(f);
                hs.push(Functional {
                    alpha: alpha[k],
                    displacement: if d.is_empty() {
                        &[]
                    } else {
                        &d[start..start + n]
                    },
                    virial: c[k],
                });
                start += n;
            }
            let (value, g) = run(py, || t.gradient(&nets, &frames, &hs))?;
            Ok((value, g.into_pyarray(py)))
        }
    }

    /// n2p2's Kalman filter over blocks of weights (`models::network::training::kalman`).
    #[pyclass(name = "KalmanFilter", module = "mlpot._core", frozen)]
    struct PyKalmanFilter {
        inner: std::sync::Mutex<KalmanFilter>,
    }

    impl PyKalmanFilter {
        fn lock(&self) -> std::sync::MutexGuard<'_, KalmanFilter> {
            self.inner.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    #[pymethods]
    impl PyKalmanFilter {
        #[new]
        #[allow(clippy::too_many_arguments)]
        fn new(
            blocks: Vec<usize>,
            epsilon: f64,
            q0: f64,
            q_min: f64,
            eta0: f64,
            eta_max: f64,
            tau: f64,
            per_epoch: f64,
            max_error: f64,
        ) -> PyResult<Self> {
            let params = KalmanParams {
                epsilon,
                q0,
                q_min,
                eta0,
                eta_max,
                tau,
                per_epoch,
                max_error,
            };
            let kf = KalmanFilter::new(blocks, params).map_err(to_py_err)?;
            Ok(PyKalmanFilter {
                inner: std::sync::Mutex::new(kf),
            })
        }

        #[getter]
        fn steps(&self) -> u64 {
            self.lock().steps()
        }

        #[getter]
        fn q(&self) -> f64 {
            self.lock().q()
        }

        #[getter]
        fn eta(&self) -> f64 {
            self.lock().eta()
        }

        #[getter]
        fn blocks(&self) -> Vec<usize> {
            self.lock().blocks().to_vec()
        }

        /// The covariance of block b, (n_b, n_b).
        fn covariance<'py>(
            &self,
            py: Python<'py>,
            b: usize,
        ) -> PyResult<Bound<'py, PyArray2<f64>>> {
            let kf = self.lock();
            let n = *kf.blocks().get(b).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "no block {b} (the filter has {})",
                    kf.blocks().len()
                ))
            })?;
            Ok(matrix(kf.covariance(b).to_vec(), n, n).into_pyarray(py))
        }

        /// Restores the covariances of all blocks and the number of updates done.
        fn restore(&self, covariances: Vec<PyReadonlyArray2<'_, f64>>, steps: u64) -> PyResult<()> {
            let p: Vec<Vec<f64>> = covariances
                .iter()
                .map(|c| c.as_array().iter().copied().collect())
                .collect();
            self.lock().restore(p, steps).map_err(to_py_err)
        }
    }

    /// Runs one epoch of Kalman updates for each member (in parallel): member k has the
    /// filter `filters[k]`, the weights `thetas[k]` and the updates (frame, atom or -1 for
    /// the energy, axis) `schedules[k]` (m, 3) with their reference values and units
    /// `targets[k]` (m, 2). Returns the new weights.
    #[pyfunction]
    #[allow(clippy::too_many_arguments)]
    fn kalman_epochs<'py>(
        py: Python<'py>,
        training: &PyNetworkTraining,
        term: &PyTerm,
        filters: Vec<PyRef<'py, PyKalmanFilter>>,
        thetas: Vec<PyReadonlyArray1<'py, f64>>,
        schedules: Vec<PyReadonlyArray2<'py, i64>>,
        targets: Vec<PyReadonlyArray2<'py, f64>>,
    ) -> PyResult<Vec<Bound<'py, PyArray1<f64>>>> {
        let k = filters.len();
        if thetas.len() != k || schedules.len() != k || targets.len() != k {
            return Err(PyValueError::new_err(format!(
                "one filter, theta, schedule and target array per member: got {k}, {}, {} and {}",
                thetas.len(),
                schedules.len(),
                targets.len()
            )));
        }
        for a in 0..k {
            for b in 0..a {
                if std::ptr::eq(&*filters[a], &*filters[b]) {
                    return Err(PyValueError::new_err(format!(
                        "members {b} and {a} share one Kalman filter"
                    )));
                }
            }
        }
        let mut updates = Vec::with_capacity(k);
        for (s, t) in schedules.iter().zip(&targets) {
            let s = s.as_array();
            let t = t.as_array();
            if s.ncols() != 3 || t.shape() != [s.nrows(), 2] {
                return Err(PyValueError::new_err(format!(
                    "a schedule must have shape (m, 3) with targets (m, 2), got {:?} and {:?}",
                    s.shape(),
                    t.shape()
                )));
            }
            let mut u = Vec::with_capacity(t.nrows());
            for (row, target) in s.rows().into_iter().zip(t.rows()) {
                let (frame, atom, axis) = (row[0], row[1], row[2]);
                if frame < 0 || atom < -1 || !(0..3).contains(&axis) {
                    return Err(PyValueError::new_err(format!(
                        "a bad update (frame {frame}, atom {atom}, axis {axis})"
                    )));
                }
                u.push(Update {
                    frame: frame as usize,
                    atom: (atom >= 0).then_some(atom as usize),
                    axis: axis as usize,
                    target: target[0],
                    unit: target[1],
                });
            }
            updates.push(u);
        }
        let base = term.networks_with(thetas[0].as_slice()?)?;
        let thetas: Vec<Vec<f64>> = thetas.iter().map(|t| t.as_array().to_vec()).collect();
        let mut kfs: Vec<KalmanFilter> = filters.iter().map(|f| f.lock().clone()).collect();
        let set = &training.inner;
        let result = run(py, || {
            let mut members: Vec<Member> = kfs
                .iter_mut()
                .zip(thetas)
                .zip(&updates)
                .map(|((filter, theta), schedule)| Member {
                    networks: base.clone(),
                    theta,
                    filter,
                    schedule,
                })
                .collect();
            set.kalman_epochs(&mut members)?;
            Ok(members.into_iter().map(|m| m.theta).collect::<Vec<_>>())
        })?;
        for (f, kf) in filters.iter().zip(kfs) {
            *f.lock() = kf;
        }
        Ok(result.into_iter().map(|t| t.into_pyarray(py)).collect())
    }

    /// (energies, gradients) of `Term.network_outputs`.
    type NetworkOutputArrays<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>);

    /// (energies, forces, virial, per-atom rows or None) of `Term.predict`.
    type TermPredictionArrays<'py> = (
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray1<f64>>,
        Option<Bound<'py, PyArray2<f64>>>,
    );

    fn core_terms<'a>(terms: &'a [PyRef<'a, PyTerm>]) -> Vec<&'a dyn Term> {
        terms.iter().map(|t| t.inner.as_ref()).collect()
    }

    /// The rows of every term of a model for one structure, from one neighbor list: a list
    /// of dicts as `Term.rows`.
    #[pyfunction]
    fn rows_terms<'py>(
        py: Python<'py>,
        terms: Vec<PyRef<'py, PyTerm>>,
        structure: &PyStructure,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let s = &structure.inner;
        let core = core_terms(&terms);
        let rows = run(py, || models::rows_terms(&core, s))?;
        rows.into_iter()
            .map(|r| rows_dict(py, r, s.len()))
            .collect()
    }

    /// The summed prediction of the terms of a model (weights[k] for term k) from one
    /// neighbor list: (energies, forces, virial, [per-atom rows of each term or None]).
    #[pyfunction]
    fn predict_terms<'py>(
        py: Python<'py>,
        terms: Vec<PyRef<'py, PyTerm>>,
        structure: &PyStructure,
        weights: Vec<PyReadonlyArray1<'py, f64>>,
        with_rows: bool,
    ) -> PyResult<ModelPredictionArrays<'py>> {
        let s = &structure.inner;
        let core = core_terms(&terms);
        let w: Vec<Vec<f64>> = weights.iter().map(|w| w.as_array().to_vec()).collect();
        let views: Vec<&[f64]> = w.iter().map(|w| w.as_slice()).collect();
        let (p, rows) = run(py, || models::predict_terms(&core, s, &views, with_rows))?;
        let (e, f, v) = prediction_arrays(py, p);
        let rows = rows
            .into_iter()
            .zip(&core)
            .map(|(r, t)| r.map(|r| matrix(r, s.len(), t.n_columns()).into_pyarray(py)))
            .collect();
        Ok((e, f, v, rows))
    }

    /// (energies, forces, virial, per-term rows) of `predict_terms`.
    type ModelPredictionArrays<'py> = (
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray1<f64>>,
        Vec<Option<Bound<'py, PyArray2<f64>>>>,
    );

    /// See `mlpot.set_num_threads`; a negative or absurd `n` is a ValueError.
    #[pyfunction]
    fn set_num_threads(py: Python<'_>, n: i64) -> PyResult<()> {
        py.detach(|| parallel::set_num_threads(n))
            .map_err(to_py_err)
    }

    /// Neighbor lists built for descriptors and models so far in this process (for tests).
    #[pyfunction]
    fn lists_built() -> usize {
        descriptors::lists_built()
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
        m.add_class::<PyDescriptor>()?;
        m.add_class::<PyZbl>()?;
        m.add_class::<PyTerm>()?;
        m.add_class::<PyNetworkTraining>()?;
        m.add_class::<PyKalmanFilter>()?;
        m.add_function(wrap_pyfunction!(kalman_epochs, m)?)?;
        m.add_function(wrap_pyfunction!(rows_terms, m)?)?;
        m.add_function(wrap_pyfunction!(predict_terms, m)?)?;
        m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
        m.add_function(wrap_pyfunction!(lists_built, m)?)?;
        Ok(())
    }
}
