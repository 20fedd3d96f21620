//! F6 "deep vs shallow": a shallow and a deep MLP autoencoder with the same code size.

use super::common::err;
use super::plot::tile_sheet;
use super::{Ctx, Figure};
use latent_autoencoder::models::MlpAeParams;
use latent_autoencoder::{Activation, Reconstructor};
use latent_datasets::Mnist;

pub const FIGURE: Figure = Figure {
    id: "F6",
    title: "Deep vs shallow autoencoders",
    claim: "With the same code size, a deep autoencoder (several non-linear layers) reconstructs test digits better \
            than a shallow one (a single layer each way).",
    run,
};

fn run(ctx: &mut Ctx) -> Result<(), String> {
    let m = if ctx.quick { Mnist::load_small() } else { Mnist::load_default() }.map_err(err)?;
    let x = m.train.to_tensor4::<f32>(&(0..m.train.len()).collect::<Vec<_>>()).map_err(err)?;
    let test = m.test.to_tensor4::<f32>(&(0..m.test.len()).collect::<Vec<_>>()).map_err(err)?;
    let epochs = if ctx.quick { 25 } else { 30 };
    let code = 32;
    let show = 10;
    let mut tiles: Vec<Vec<f32>> = (0..show).map(|i| test.sample(i).unwrap_or_default().to_vec()).collect();
    for (name, widths) in [("shallow", vec![784, code]), ("deep", vec![784, 256, 64, code])] {
        let spin = ctx.spinner(&format!("F6 {name}"));
        let mut fitted = MlpAeParams::new(widths.clone())
            .code_activation(Activation::Identity)
            .lr(1e-3)
            .batch_size(128)
            .epochs(epochs)
            .seed(ctx.seed)
            .progress(false)
            .check()
            .map_err(err)?
            .fit(&x)
            .map_err(err)?;
        spin.finish_and_clear();
        let mse = fitted.model.reconstruction_errors(&test).map_err(err)?.iter().map(|&v| v as f64).sum::<f64>()
            / test.n() as f64;
        let train_mse =
            fitted.model.reconstruction_errors(&x).map_err(err)?.iter().map(|&v| v as f64).sum::<f64>() / x.n() as f64;
        ctx.metric(&format!("{name}_test_mse_per_pixel"), mse);
        ctx.metric(&format!("{name}_train_mse_per_pixel"), train_mse);
        ctx.metric(&format!("{name}_params"), fitted.model.num_params() as u64);
        let mut mirrored: Vec<String> = widths.iter().map(|w| w.to_string()).collect();
        mirrored.extend(widths.iter().rev().skip(1).map(|w| w.to_string()));
        ctx.config(&format!("{name}_widths"), mirrored.join("-"));
        let r = fitted.model.reconstruct(&test).map_err(err)?;
        tiles.extend((0..show).map(|i| r.sample(i).unwrap_or_default().to_vec()));
    }
    ctx.canvas(
        "reconstructions.png",
        "Test digits (top), shallow 784-32-784 reconstructions (middle), deep 784-256-64-32-64-256-784 \
         reconstructions (bottom).",
        &tile_sheet(&tiles, 28, 28, show, 3, false),
    )?;
    ctx.config("code_size", code as u64);
    ctx.config(
        "training",
        format!("Adam lr 1e-3, batch 128, {epochs} epochs, MSE, ReLU hidden, linear code, sigmoid output"),
    );
    ctx.config("train_images", x.n() as u64);
    ctx.config("test_images", test.n() as u64);
    Ok(())
}
