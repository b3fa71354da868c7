use super::*;
use crate::models::network::tests::{bispectrum, random_network, term};
use crate::models::network::Activation;
use crate::structure::Structure;
use crate::test_support::{assert_close, random_vector, rattled_cell};

fn params(per_epoch: f64) -> KalmanParams {
    KalmanParams {
        epsilon: 0.01,
        q0: 0.01,
        q_min: 1e-6,
        eta0: 0.01,
        eta_max: 1.0,
        tau: 2.302,
        per_epoch,
        max_error: f64::INFINITY,
    }
}

#[test]
fn an_update_is_the_kalman_formula() {
    let blocks = vec![3, 2];
    let mut kf = KalmanFilter::new(blocks, params(4.0)).unwrap();
    // a non-trivial covariance first
    let mut theta = random_vector(1, 5);
    kf.update(&mut theta, &random_vector(2, 5), 0.3);
    let p0: Vec<Vec<f64>> = (0..2).map(|b| kf.covariance(b).to_vec()).collect();
    let (q, eta) = (kf.q(), kf.eta());
    assert_close(q, 0.01 * (-0.25f64 * 2.302).exp(), 1e-15, 1.0, "q schedule");
    assert_close(
        eta,
        0.01 * (0.25f64 * 2.302).exp(),
        1e-15,
        1.0,
        "eta schedule",
    );
    let h = random_vector(3, 5);
    let before = theta.clone();
    kf.update(&mut theta, &h, -0.7);
    // dense: X = P H per block, a = H . X + 1 / eta
    let x0: Vec<f64> = (0..3)
        .map(|r| (0..3).map(|c| p0[0][r * 3 + c] * h[c]).sum())
        .collect();
    let x1: Vec<f64> = (0..2)
        .map(|r| (0..2).map(|c| p0[1][r * 2 + c] * h[3 + c]).sum())
        .collect();
    let x: Vec<f64> = x0.iter().chain(&x1).copied().collect();
    let a: f64 = h.iter().zip(&x).map(|(h, x)| h * x).sum::<f64>() + 1.0 / eta;
    for k in 0..5 {
        assert_close(theta[k], before[k] + x[k] * -0.7 / a, 1e-14, 1.0, "theta");
    }
    for (b, (xb, n)) in [(&x0, 3), (&x1, 2)].into_iter().enumerate() {
        for r in 0..n {
            for c in 0..n {
                let expected = p0[b][r * n + c] - xb[r] * xb[c] / a + if r == c { q } else { 0.0 };
                assert_close(kf.covariance(b)[r * n + c], expected, 1e-13, 1.0, "P");
            }
        }
    }
    assert_eq!(kf.steps(), 2);
}

#[test]
fn a_block_the_observation_does_not_see_only_gets_process_noise() {
    let mut kf = KalmanFilter::new(vec![2, 2], params(1.0)).unwrap();
    let mut theta = vec![0.5; 4];
    let q = kf.q();
    kf.update(&mut theta, &[1.0, 2.0, 0.0, 0.0], 1.0);
    assert_eq!(&theta[2..], &[0.5, 0.5]);
    assert_eq!(kf.covariance(1), &[100.0 + q, 0.0, 0.0, 100.0 + q]);
    assert!(theta[0] != 0.5);
}

#[test]
fn bad_settings_are_errors() {
    assert!(KalmanFilter::new(vec![], params(1.0)).is_err());
    assert!(KalmanFilter::new(vec![2, 0], params(1.0)).is_err());
    assert!(KalmanFilter::new(
        vec![2],
        KalmanParams {
            epsilon: 0.0,
            ..params(1.0)
        }
    )
    .is_err());
    assert!(KalmanFilter::new(
        vec![2],
        KalmanParams {
            q0: f64::NAN,
            ..params(1.0)
        }
    )
    .is_err());
    let mut kf = KalmanFilter::new(vec![2], params(1.0)).unwrap();
    assert!(kf.restore(vec![vec![1.0; 3]], 4).is_err());
    kf.restore(vec![vec![1.0, 0.0, 0.0, 1.0]], 4).unwrap();
    assert_eq!(kf.steps(), 4);
}

/// A student learns the energies and forces of a teacher network of the same shape.
#[test]
fn the_filter_learns_a_teacher() {
    let student = term(bispectrum());
    let nets = student.training_networks().unwrap();
    let teacher: Vec<Network> = nets
        .iter()
        .enumerate()
        .map(|(k, n)| {
            let sizes: Vec<usize> = std::iter::once(n.n_in())
                .chain(n.layers().iter().map(|l| l.n_out()))
                .collect();
            let acts: Vec<Activation> = n.layers().iter().map(|l| l.activation()).collect();
            random_network(
                40 + k as u64,
                &sizes,
                &acts,
                0.5,
                n.scaling().clone(),
                n.normalize_nodes(),
            )
        })
        .collect();
    let s: Vec<Structure> = (0..6)
        .map(|k| rattled_cell(10 + k, &[28, 13], 2.6, [2, 2, 1], 0.3, true))
        .collect();
    let n_inputs = nets.iter().map(|n| n.n_in()).collect();
    let set = TrainingSet::new(student.descriptor.clone(), n_inputs, &s, &[false; 6]).unwrap();
    let frames: Vec<usize> = (0..6).collect();
    let truth = set.predict(&teacher, &frames).unwrap();
    let mut schedule = Vec::new();
    for f in 0..6 {
        let n = set.n_atoms(f);
        schedule.push(Update {
            frame: f,
            atom: None,
            axis: 0,
            target: truth[f].energy / n as f64,
            unit: 0.01,
        });
        for i in 0..n {
            for a in 0..3 {
                schedule.push(Update {
                    frame: f,
                    atom: Some(i),
                    axis: a,
                    target: truth[f].forces[i][a],
                    unit: 0.01,
                });
            }
        }
    }
    let rmse = |nets: &[Network]| {
        let p = set.predict(nets, &frames).unwrap();
        let (mut sum, mut count) = (0.0, 0.0);
        for (p, t) in p.iter().zip(&truth) {
            for (a, b) in p.forces.iter().zip(&t.forces) {
                sum += (0..3).map(|c| (a[c] - b[c]).powi(2)).sum::<f64>();
                count += 3.0;
            }
        }
        (sum / count).sqrt()
    };
    let start = rmse(&nets);
    let blocks: Vec<usize> = nets.iter().map(|n| n.n_parameters()).collect();
    let mut filter = KalmanFilter::new(blocks, params(schedule.len() as f64)).unwrap();
    let theta: Vec<f64> = nets.iter().flat_map(|n| n.parameters()).collect();
    let mut member = [Member {
        networks: nets.clone(),
        theta,
        filter: &mut filter,
        schedule: &schedule,
    }];
    for _ in 0..5 {
        set.kalman_epochs(&mut member).unwrap();
    }
    let mut trained = nets.clone();
    let (offsets, _) = TrainingSet::parameter_offsets(&nets);
    for (k, n) in trained.iter_mut().enumerate() {
        let m = n.n_parameters();
        n.set_parameters(&member[0].theta[offsets[k]..offsets[k] + m])
            .unwrap();
    }
    let end = rmse(&trained);
    assert!(end < 0.2 * start, "force RMSE {start} -> {end}");
    let bad = [Update {
        frame: 9,
        atom: None,
        axis: 0,
        target: 0.0,
        unit: 1.0,
    }];
    let mut f2 = KalmanFilter::new(member[0].filter.blocks().to_vec(), params(1.0)).unwrap();
    let mut m2 = [Member {
        networks: nets.clone(),
        theta: member[0].theta.clone(),
        filter: &mut f2,
        schedule: &bad,
    }];
    assert!(set.kalman_epochs(&mut m2).is_err());
}

/// The epoch fuses each update's covariance pass with the next projection: the same
/// numbers, bit for bit, as one whole `update` after another.
#[test]
fn a_fused_epoch_is_a_sequence_of_updates() {
    let t = term(bispectrum());
    let nets = t.training_networks().unwrap();
    let s: Vec<Structure> = (0..3).map(|k| rattled_cell(20 + k, &[28, 13], 2.6, [2, 2, 1], 0.3, true)).collect();
    let n_inputs = nets.iter().map(|n| n.n_in()).collect();
    let set = TrainingSet::new(t.descriptor.clone(), n_inputs, &s, &[false; 3]).unwrap();
    let mut schedule = Vec::new();
    for f in 0..3 {
        schedule.push(Update { frame: f, atom: None, axis: 0, target: -0.3, unit: 0.05 });
        schedule.push(Update { frame: f, atom: Some(1), axis: 2, target: 0.2, unit: 0.1 });
        schedule.push(Update { frame: f, atom: Some(0), axis: 0, target: -0.1, unit: 0.1 });
    }
    let blocks: Vec<usize> = nets.iter().map(|n| n.n_parameters()).collect();
    let theta: Vec<f64> = nets.iter().flat_map(|n| n.parameters()).collect();
    let mut fused = KalmanFilter::new(blocks.clone(), params(9.0)).unwrap();
    let mut member = [Member { networks: nets.clone(), theta: theta.clone(), filter: &mut fused, schedule: &schedule }];
    set.kalman_epochs(&mut member).unwrap();
    let fused_theta = member[0].theta.clone();

    let mut plain = KalmanFilter::new(blocks, params(9.0)).unwrap();
    let mut theta = theta;
    let (offsets, total) = TrainingSet::parameter_offsets(&nets);
    let mut ws = Workspace::default();
    for u in &schedule {
        let mut current = nets.clone();
        for (k, n) in current.iter_mut().enumerate() {
            let m = n.n_parameters();
            n.set_parameters(&theta[offsets[k]..offsets[k] + m]).unwrap();
        }
        let n = set.n_atoms(u.frame);
        let mut d = vec![[0.0; 3]; n];
        let h = match u.atom {
            None => Functional { alpha: 1.0 / (n as f64 * u.unit), displacement: &[], virial: [0.0; 6] },
            Some(i) => {
                d[i][u.axis] = -1.0 / u.unit;
                Functional { alpha: 0.0, displacement: &d, virial: [0.0; 6] }
            }
        };
        let (value, jacobian) = set.frame_observation(&current, &offsets, total, u.frame, &h, &mut ws);
        plain.update(&mut theta, &jacobian, u.target / u.unit - value);
    }
    assert!(theta.iter().zip(&fused_theta).all(|(a, b)| a.to_bits() == b.to_bits()));
    for b in 0..2 {
        assert!(plain.covariance(b).iter().zip(fused.covariance(b)).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    assert_eq!(plain.steps(), fused.steps());
}
