//! The FID Inception-v3's convolutions, named as pytorch-fid's state dict names them
//! (`Mixed_5b.branch5x5_2` holds `.conv.weight` and `.bn.{weight,bias,running_mean,running_var}`).
//! Every one is torchvision's `BasicConv2d`: a convolution without bias, BatchNorm with
//! eps = 0.001, ReLU.

/// One BasicConv2d.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    pub name: String,
    pub cin: usize,
    pub cout: usize,
    pub kernel: (usize, usize),
    pub stride: usize,
    pub pad: (usize, usize),
}

impl ConvSpec {
    /// PyTorch's weight shape [cout, cin, kh, kw].
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.cout, self.cin, self.kernel.0, self.kernel.1]
    }
}

/// BatchNorm's epsilon in BasicConv2d.
pub const BN_EPS: f64 = 0.001;

/// Which Inception block a `Mixed_*` module is (pytorch-fid's classes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// FIDInceptionA(in, pool_features): 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avgpool→1×1.
    A { cin: usize, pool: usize },
    /// InceptionB: 3×3/2 | 1×1→3×3→3×3/2 | maxpool 3×3/2.
    B { cin: usize },
    /// FIDInceptionC(in, c7): 1×1 | 1×1→1×7→7×1 | 1×1→7×1→1×7→7×1→1×7 | avgpool→1×1.
    C { cin: usize, c7: usize },
    /// InceptionD: 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | maxpool 3×3/2.
    D { cin: usize },
    /// FIDInceptionE_1 (average pooling branch) and FIDInceptionE_2 (max pooling branch):
    /// 1×1 | 1×1→(1×3 ‖ 3×1) | 1×1→3×3→(1×3 ‖ 3×1) | pool→1×1.
    E { cin: usize, max_pool: bool },
}

impl Block {
    /// Channels of the block's output.
    pub fn cout(self) -> usize {
        match self {
            Block::A { pool, .. } => 64 + 64 + 96 + pool,
            Block::B { cin } => 384 + 96 + cin,
            Block::C { .. } => 4 * 192,
            Block::D { cin } => 320 + 192 + cin,
            Block::E { .. } => 320 + 768 + 768 + 192,
        }
    }
}

/// The stem's convolutions; max pooling 3×3/2 follows Conv2d_2b_3x3 and Conv2d_4a_3x3.
pub fn stem() -> Vec<ConvSpec> {
    vec![
        conv("Conv2d_1a_3x3", 3, 32, (3, 3), 2, (0, 0)),
        conv("Conv2d_2a_3x3", 32, 32, (3, 3), 1, (0, 0)),
        conv("Conv2d_2b_3x3", 32, 64, (3, 3), 1, (1, 1)),
        conv("Conv2d_3b_1x1", 64, 80, (1, 1), 1, (0, 0)),
        conv("Conv2d_4a_3x3", 80, 192, (3, 3), 1, (0, 0)),
    ]
}

/// The mixed blocks in order, 35×35 (5b–5d), 17×17 (6a–6e), 8×8 (7a–7c).
pub fn blocks() -> Vec<(&'static str, Block)> {
    vec![
        ("Mixed_5b", Block::A { cin: 192, pool: 32 }),
        ("Mixed_5c", Block::A { cin: 256, pool: 64 }),
        ("Mixed_5d", Block::A { cin: 288, pool: 64 }),
        ("Mixed_6a", Block::B { cin: 288 }),
        ("Mixed_6b", Block::C { cin: 768, c7: 128 }),
        ("Mixed_6c", Block::C { cin: 768, c7: 160 }),
        ("Mixed_6d", Block::C { cin: 768, c7: 160 }),
        ("Mixed_6e", Block::C { cin: 768, c7: 192 }),
        ("Mixed_7a", Block::D { cin: 768 }),
        (
            "Mixed_7b",
            Block::E {
                cin: 1280,
                max_pool: false,
            },
        ),
        (
            "Mixed_7c",
            Block::E {
                cin: 2048,
                max_pool: true,
            },
        ),
    ]
}

fn conv(
    name: &str,
    cin: usize,
    cout: usize,
    kernel: (usize, usize),
    stride: usize,
    pad: (usize, usize),
) -> ConvSpec {
    ConvSpec {
        name: name.to_string(),
        cin,
        cout,
        kernel,
        stride,
        pad,
    }
}

/// A block's convolutions, named `<block>.<branch>`.
pub fn block_convs(name: &str, block: Block) -> Vec<ConvSpec> {
    let c = |branch: &str, cin, cout, kernel, stride, pad| {
        conv(&format!("{name}.{branch}"), cin, cout, kernel, stride, pad)
    };
    let (k1, k3, k5) = ((1, 1), (3, 3), (5, 5));
    let (k17, k71, k13, k31) = ((1, 7), (7, 1), (1, 3), (3, 1));
    let p0 = (0, 0);
    match block {
        Block::A { cin, pool } => vec![
            c("branch1x1", cin, 64, k1, 1, p0),
            c("branch5x5_1", cin, 48, k1, 1, p0),
            c("branch5x5_2", 48, 64, k5, 1, (2, 2)),
            c("branch3x3dbl_1", cin, 64, k1, 1, p0),
            c("branch3x3dbl_2", 64, 96, k3, 1, (1, 1)),
            c("branch3x3dbl_3", 96, 96, k3, 1, (1, 1)),
            c("branch_pool", cin, pool, k1, 1, p0),
        ],
        Block::B { cin } => vec![
            c("branch3x3", cin, 384, k3, 2, p0),
            c("branch3x3dbl_1", cin, 64, k1, 1, p0),
            c("branch3x3dbl_2", 64, 96, k3, 1, (1, 1)),
            c("branch3x3dbl_3", 96, 96, k3, 2, p0),
        ],
        Block::C { cin, c7 } => vec![
            c("branch1x1", cin, 192, k1, 1, p0),
            c("branch7x7_1", cin, c7, k1, 1, p0),
            c("branch7x7_2", c7, c7, k17, 1, (0, 3)),
            c("branch7x7_3", c7, 192, k71, 1, (3, 0)),
            c("branch7x7dbl_1", cin, c7, k1, 1, p0),
            c("branch7x7dbl_2", c7, c7, k71, 1, (3, 0)),
            c("branch7x7dbl_3", c7, c7, k17, 1, (0, 3)),
            c("branch7x7dbl_4", c7, c7, k71, 1, (3, 0)),
            c("branch7x7dbl_5", c7, 192, k17, 1, (0, 3)),
            c("branch_pool", cin, 192, k1, 1, p0),
        ],
        Block::D { cin } => vec![
            c("branch3x3_1", cin, 192, k1, 1, p0),
            c("branch3x3_2", 192, 320, k3, 2, p0),
            c("branch7x7x3_1", cin, 192, k1, 1, p0),
            c("branch7x7x3_2", 192, 192, k17, 1, (0, 3)),
            c("branch7x7x3_3", 192, 192, k71, 1, (3, 0)),
            c("branch7x7x3_4", 192, 192, k3, 2, p0),
        ],
        Block::E { cin, .. } => vec![
            c("branch1x1", cin, 320, k1, 1, p0),
            c("branch3x3_1", cin, 384, k1, 1, p0),
            c("branch3x3_2a", 384, 384, k13, 1, (0, 1)),
            c("branch3x3_2b", 384, 384, k31, 1, (1, 0)),
            c("branch3x3dbl_1", cin, 448, k1, 1, p0),
            c("branch3x3dbl_2", 448, 384, k3, 1, (1, 1)),
            c("branch3x3dbl_3a", 384, 384, k13, 1, (0, 1)),
            c("branch3x3dbl_3b", 384, 384, k31, 1, (1, 0)),
            c("branch_pool", cin, 192, k1, 1, p0),
        ],
    }
}

/// Every convolution of the network: the stem's, then each block's.
pub fn all_convs() -> Vec<ConvSpec> {
    let mut v = stem();
    for (name, block) in blocks() {
        v.extend(block_convs(name, block));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ninety_four_convolutions_and_2048_features() {
        let convs = all_convs();
        assert_eq!(convs.len(), 94);
        let names: std::collections::HashSet<_> = convs.iter().map(|c| &c.name).collect();
        assert_eq!(names.len(), 94, "names are unique");
        let blocks = blocks();
        assert_eq!(blocks.last().unwrap().1.cout(), 2048);
        // Each block reads what the one before writes.
        let mut c = 192;
        for (name, b) in blocks {
            let cin = match b {
                Block::A { cin, .. }
                | Block::B { cin }
                | Block::C { cin, .. }
                | Block::D { cin }
                | Block::E { cin, .. } => cin,
            };
            assert_eq!(cin, c, "{name}");
            c = b.cout();
        }
    }
}
