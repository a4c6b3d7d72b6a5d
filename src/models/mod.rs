//! The convolutional networks the presets build: DCGAN at 28, 32 and 64 pixels (and the first
//! SAGAN on its body), and SNGAN's and SAGAN's ResNets at 32 pixels. The MLPs and ProGAN's
//! growing pair are built in `config::networks` and `layers::progressive`.

pub mod dcgan;
pub mod resnet32;
