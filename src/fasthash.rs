//! A fast hasher for the small integer keys of the per-call maps (session and
//! object handles, slot ids): the Fx multiply-rotate hash. Not DoS-resistant, and
//! it need not be: the keys are handles the token handed out, not attacker-chosen
//! strings, and SipHash cost ~20 ns per look-up on the hot path.

use std::hash::{BuildHasherDefault, Hasher};

/// `HashMap<K, V, FastHash>`.
pub type FastHash = BuildHasherDefault<FxHasher>;

/// The Fx hash (as in rustc): one rotate, xor and multiply per word.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher(u64);

const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn maps_with_it_behave() {
        let mut m: HashMap<(u64, u64), u32, FastHash> = HashMap::default();
        for i in 0..1000u64 {
            m.insert((i, i * 7), u32::try_from(i).unwrap());
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.get(&(999, 6993)), Some(&999));
        assert_eq!(m.get(&(999, 6994)), None);
    }
}
