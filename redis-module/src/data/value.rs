//! The value behind a vset key: the version and the payload (or a tombstone) in one
//! heap block that Redis holds as one module value, so they can never be observed or
//! persisted apart (docs/design.md, invariant 3).
//!
//! One block rather than a struct plus a `Vec`: storing a new key then costs one
//! allocation instead of two (allocations are a large share of what VSET costs more
//! than SET), and a 64-byte value takes 80 bytes instead of 96.
//!
//! Layout: a [`Header`] (version, capacity, length) followed by `capacity` payload
//! bytes. A tombstone has length [`TOMBSTONE`].

use std::alloc::{self, Layout};
use std::fmt;
use std::marker::PhantomData;
use std::os::raw::c_void;
use std::ptr::NonNull;

use thiserror::Error;

#[repr(C)]
struct Header {
    version: u64,
    capacity: u32,
    len: u32,
}

/// The `len` of a tombstone.
const TOMBSTONE: u32 = u32::MAX;

/// The largest payload one value holds (4 GiB - 2 bytes; Redis' own default limit for
/// one argument, `proto-max-bulk-len`, is 512 MB).
pub const MAX_PAYLOAD: usize = (u32::MAX - 1) as usize;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("value is {0} bytes; a vset value holds at most {MAX_PAYLOAD} bytes")]
pub struct TooLarge(pub usize);

fn layout(capacity: u32) -> Layout {
    // 16 bytes of header plus at most 4 GiB: cannot overflow isize on a 64-bit host.
    let (layout, _) = Layout::new::<Header>()
        .extend(Layout::array::<u8>(capacity as usize).expect("u32 bytes fit a layout"))
        .expect("header + u32 bytes fit a layout");
    layout.pad_to_align()
}

/// A value owned by Rust (freed on drop) until [`VersionedValue::into_raw`] hands
/// it to Redis.
pub struct VersionedValue {
    block: NonNull<Header>,
}

impl VersionedValue {
    /// A value, or a tombstone when `payload` is `None`.
    pub fn new(version: u64, payload: Option<&[u8]>) -> Result<Self, TooLarge> {
        match payload {
            Some(p) if p.len() > MAX_PAYLOAD => Err(TooLarge(p.len())),
            Some(p) => Ok(Self::alloc(version, p.len() as u32, p)),
            None => Ok(Self::tombstone(version)),
        }
    }

    pub fn tombstone(version: u64) -> Self {
        Self::alloc(version, TOMBSTONE, &[])
    }

    /// A block of exactly `payload.len()` bytes of capacity (`len` ≤ MAX_PAYLOAD or
    /// TOMBSTONE with an empty payload).
    fn alloc(version: u64, len: u32, payload: &[u8]) -> Self {
        let capacity = payload.len() as u32;
        let layout = layout(capacity);
        // SAFETY: the layout has a non-zero size (the header).
        let raw = unsafe { alloc::alloc(layout) };
        let Some(block) = NonNull::new(raw.cast::<Header>()) else {
            alloc::handle_alloc_error(layout)
        };
        // SAFETY: fresh block of `layout`, header first, then `capacity` bytes.
        unsafe {
            block.as_ptr().write(Header {
                version,
                capacity,
                len,
            });
            std::ptr::copy_nonoverlapping(payload.as_ptr(), payload_ptr(block), payload.len());
        }
        Self { block }
    }

    pub fn view(&self) -> ValueRef<'_> {
        ValueRef {
            block: self.block,
            _owner: PhantomData,
        }
    }

    pub fn version(&self) -> u64 {
        self.view().version()
    }

    pub fn payload(&self) -> Option<&[u8]> {
        self.view().payload()
    }

    pub fn is_tombstone(&self) -> bool {
        self.view().is_tombstone()
    }

    /// Hands the block to Redis as a module value.
    pub fn into_raw(self) -> *mut c_void {
        let raw = self.block.as_ptr().cast();
        std::mem::forget(self);
        raw
    }

    /// Takes a block back from Redis (to free it).
    ///
    /// # Safety
    /// `raw` is null or came from [`VersionedValue::into_raw`] and is not used again.
    pub unsafe fn from_raw(raw: *mut c_void) -> Option<Self> {
        NonNull::new(raw.cast::<Header>()).map(|block| Self { block })
    }

    /// Views a block Redis holds.
    ///
    /// # Safety
    /// `raw` is null or came from [`VersionedValue::into_raw`], and the block is
    /// neither freed nor overwritten while the view lives.
    pub unsafe fn borrow_raw<'a>(raw: *const c_void) -> Option<ValueRef<'a>> {
        NonNull::new(raw.cast_mut().cast::<Header>()).map(|block| ValueRef {
            block,
            _owner: PhantomData,
        })
    }

    /// Replaces the content of a block Redis holds, in place, when the new payload
    /// fits and would not leave more than half of the block unused. Returns false
    /// (and changes nothing) otherwise: the caller then stores a new block.
    ///
    /// # Safety
    /// `raw` came from [`VersionedValue::into_raw`], and nothing else reads or
    /// writes the block during the call (true on Redis' main thread).
    pub unsafe fn overwrite_raw(raw: *mut c_void, version: u64, payload: Option<&[u8]>) -> bool {
        let Some(block) = NonNull::new(raw.cast::<Header>()) else {
            return false;
        };
        // SAFETY: a live block (caller's promise), accessed through the raw pointer.
        unsafe {
            let header = block.as_ptr();
            let capacity = (*header).capacity as usize;
            let (len, bytes) = match payload {
                Some(p) => (p.len(), p),
                None => (0, &[][..]),
            };
            if len > capacity || len * 2 < capacity {
                return false;
            }
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), payload_ptr(block), len);
            (*header).version = version;
            (*header).len = if payload.is_some() {
                len as u32
            } else {
                TOMBSTONE
            };
        }
        true
    }
}

impl Drop for VersionedValue {
    fn drop(&mut self) {
        // SAFETY: owned block, allocated with the layout of its capacity.
        unsafe {
            let capacity = (*self.block.as_ptr()).capacity;
            alloc::dealloc(self.block.as_ptr().cast(), layout(capacity));
        }
    }
}

impl Clone for VersionedValue {
    fn clone(&self) -> Self {
        self.view().to_owned()
    }
}

impl PartialEq for VersionedValue {
    fn eq(&self, other: &Self) -> bool {
        self.version() == other.version() && self.payload() == other.payload()
    }
}

impl Eq for VersionedValue {}

impl fmt::Debug for VersionedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().fmt(f)
    }
}

/// The payload bytes of a block.
///
/// # Safety
/// `block` is a live block.
unsafe fn payload_ptr(block: NonNull<Header>) -> *mut u8 {
    // SAFETY: the payload starts right after the header (repr(C), align 1 bytes).
    unsafe { block.as_ptr().add(1).cast::<u8>() }
}

/// A read-only view of a block (one Redis holds, or an owned one).
#[derive(Clone, Copy)]
pub struct ValueRef<'a> {
    block: NonNull<Header>,
    _owner: PhantomData<&'a Header>,
}

impl<'a> ValueRef<'a> {
    fn header(&self) -> &'a Header {
        // SAFETY: live for 'a (see the constructors).
        unsafe { &*self.block.as_ptr() }
    }

    pub fn version(&self) -> u64 {
        self.header().version
    }

    /// The payload; `None` for a tombstone.
    pub fn payload(&self) -> Option<&'a [u8]> {
        let len = self.header().len;
        if len == TOMBSTONE {
            return None;
        }
        // SAFETY: `len` ≤ capacity bytes follow the header, initialised on write;
        // the pointer keeps the whole block's provenance.
        Some(unsafe { std::slice::from_raw_parts(payload_ptr(self.block), len as usize) })
    }

    pub fn is_tombstone(&self) -> bool {
        self.header().len == TOMBSTONE
    }

    /// The block's address, as Redis holds it (for [`VersionedValue::overwrite_raw`]).
    pub fn as_raw(&self) -> *mut c_void {
        self.block.as_ptr().cast()
    }

    /// Bytes the block takes (for `MEMORY USAGE` and eviction accounting).
    pub fn memory_usage(&self) -> usize {
        layout(self.header().capacity).size()
    }

    /// An owned copy (`COPY`).
    pub fn to_owned(&self) -> VersionedValue {
        match self.payload() {
            Some(p) => VersionedValue::alloc(self.version(), p.len() as u32, p),
            None => VersionedValue::tombstone(self.version()),
        }
    }
}

impl fmt::Debug for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VersionedValue")
            .field("version", &self.version())
            .field("payload", &self.payload().map(String::from_utf8_lossy))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(version: u64, payload: &[u8]) -> VersionedValue {
        VersionedValue::new(version, Some(payload)).expect("small")
    }

    #[test]
    fn holds_version_and_payload_or_tombstone() {
        let v = value(7, b"abc");
        assert_eq!((v.version(), v.payload()), (7, Some(&b"abc"[..])));
        assert!(!v.is_tombstone());
        let t = VersionedValue::tombstone(u64::MAX);
        assert_eq!((t.version(), t.payload()), (u64::MAX, None));
        assert!(t.is_tombstone());
        let e = value(1, b"");
        assert_eq!(e.payload(), Some(&b""[..]));
        assert!(!e.is_tombstone());
        assert_eq!(
            VersionedValue::new(3, None).unwrap(),
            VersionedValue::tombstone(3)
        );
    }

    #[test]
    fn one_block_sized_to_the_payload() {
        assert_eq!(value(1, &[7; 64]).view().memory_usage(), 16 + 64);
        assert_eq!(VersionedValue::tombstone(1).view().memory_usage(), 16);
        assert_eq!(value(1, b"abc").view().memory_usage(), 16 + 8); // padded to align 8
    }

    #[test]
    fn overwrite_in_place_only_when_the_block_fits_snugly() {
        let raw = value(1, b"0123456789").into_raw();
        // SAFETY: `raw` is ours for the whole test and freed at the end.
        unsafe {
            assert!(VersionedValue::overwrite_raw(raw, 2, Some(b"abcdefgh")));
            let v = VersionedValue::borrow_raw(raw).unwrap();
            assert_eq!((v.version(), v.payload()), (2, Some(&b"abcdefgh"[..])));
            // Larger than the block, or leaving most of it unused: refused, unchanged.
            assert!(!VersionedValue::overwrite_raw(raw, 3, Some(b"0123456789x")));
            assert!(!VersionedValue::overwrite_raw(raw, 3, Some(b"ab")));
            assert!(!VersionedValue::overwrite_raw(raw, 3, None));
            let v = VersionedValue::borrow_raw(raw).unwrap();
            assert_eq!((v.version(), v.payload()), (2, Some(&b"abcdefgh"[..])));
            drop(VersionedValue::from_raw(raw));

            let raw = VersionedValue::tombstone(5).into_raw();
            assert!(VersionedValue::overwrite_raw(raw, 6, None));
            assert!(VersionedValue::overwrite_raw(raw, 7, Some(b"")));
            let v = VersionedValue::borrow_raw(raw).unwrap();
            assert_eq!((v.version(), v.payload()), (7, Some(&b""[..])));
            drop(VersionedValue::from_raw(raw));
        }
    }

    #[test]
    fn copies_are_equal_and_independent() {
        let a = value(9, b"payload");
        let b = a.clone();
        assert_eq!(a, b);
        drop(a);
        assert_eq!(b.payload(), Some(&b"payload"[..]));
        assert_ne!(b, value(9, b"other"));
        assert_ne!(b, value(8, b"payload"));
    }
}
