//! Data-parallel U-Net training over the in-process thread communicator: weights, batch-norm
//! running statistics and losses are bit-identical on 1, 2 and 3 ranks.

use latent_datasets::cells::{SynthCells, synth_cell_set};
use latent_optim::collective::{SingleProcess, run_threads};
use latent_unet::data::standardize;
use latent_unet::{ParamGuard, SegTrainer, TrainParams, UNet, UnetParams};

#[test]
fn unet_training_is_bit_identical_on_1_2_3_ranks() {
    let cells = synth_cell_set(&SynthCells { width: 48, height: 48, ..Default::default() }, 3, 7).unwrap();
    let sources = cells.iter().map(standardize).collect::<Result<Vec<_>, _>>().unwrap();
    let net = || UnetParams::new().depth(2).base_channels(4).check().unwrap().build::<UNet<f32>>().unwrap();
    let trainer = SegTrainer::new(TrainParams::new().steps(3).batch_size(5).tile(32).check().unwrap());
    let mut one = net();
    let before = one.to_bytes().unwrap();
    let r1 = trainer.fit_distributed(&SingleProcess, &mut one, &sources, &mut |_| {}).unwrap();
    let reference = one.to_bytes().unwrap();
    assert_ne!(reference, before);
    assert!(r1.losses.iter().all(|l| l.is_finite()));
    for ranks in [1, 2, 3] {
        for (bytes, losses) in run_threads(ranks, |c| {
            let mut m = net();
            let r = trainer.fit_distributed(&c, &mut m, &sources, &mut |_| {}).unwrap();
            (m.to_bytes().unwrap(), r.losses)
        }) {
            assert_eq!(bytes, reference, "{ranks} ranks");
            assert_eq!(losses, r1.losses, "{ranks} ranks");
        }
    }
}
