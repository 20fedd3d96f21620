#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod anomaly;
pub mod cells;
pub mod dataset;
pub mod error;
pub mod idx;
pub mod image;
pub mod mnist;
pub mod mvtec;
pub mod npy;
pub mod patches;
pub mod paths;
pub mod toy;

pub use dataset::{BatchSampler, Batches, Dataset, collect_batch, rng_from_seed};
pub use error::{DatasetError, Result};
pub use image::{
    GrayImage, LabelImage, decode_png, list_images, load_image_folder, png_size, read_png, read_png_labels,
    stack_images, write_png_gray8, write_png_gray8_bytes, write_png_labels16, write_png_rgb8,
};
pub use latent_linalg::DMatrix;
pub use mnist::{FashionMnist, ImageSet, Mnist, OneClassSplit, one_class_split};
pub use paths::{DATA_DIR_ENV, data_dir, data_file, find_data_dir};
