//! Reading GPU buffers back: `map_async` resolves a small one-shot future. Natively we poll
//! the device until the submission is done; in the browser the callback arrives on its own.
//! One code path for both.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::context::GpuContext;
use crate::error::{Error, Result};

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

/// The receiving half of a one-shot channel.
pub struct OneShot<T>(Arc<Mutex<Slot<T>>>);

/// Makes a channel; the returned closure sends (once).
pub fn oneshot<T>() -> (impl FnOnce(T), OneShot<T>) {
    let shared = Arc::new(Mutex::new(Slot { value: None, waker: None }));
    let tx = shared.clone();
    let send = move |v: T| {
        if let Ok(mut s) = tx.lock() {
            s.value = Some(v);
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    };
    (send, OneShot(shared))
}

impl<T> Future for OneShot<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let Ok(mut s) = self.0.lock() else { return Poll::Pending };
        match s.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A map request in flight: resolves when `buffer[..len]` is readable.
pub struct Pending {
    rx: OneShot<std::result::Result<(), wgpu::BufferAsyncError>>,
    submission: wgpu::SubmissionIndex,
}

/// Starts mapping `buffer[..len]` for reading after `submission`.
pub fn request(buffer: &wgpu::Buffer, len: u64, submission: wgpu::SubmissionIndex) -> Pending {
    let (tx, rx) = oneshot();
    buffer.slice(..len).map_async(wgpu::MapMode::Read, tx);
    Pending { rx, submission }
}

impl Pending {
    /// Waits for the mapping (natively by polling the device for this submission).
    pub async fn wait(self, ctx: &GpuContext) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Err(e) = ctx.device.poll(wgpu::PollType::Wait { submission_index: Some(self.submission), timeout: None }) {
            // A recorded fault (device lost, validation) says more than the failed wait; a
            // non-blocking poll first delivers any pending device-lost callback.
            let _ = ctx.device.poll(wgpu::PollType::Poll);
            ctx.check()?;
            return Err(Error::Gpu(format!("waiting for the GPU: {e}")));
        }
        #[cfg(target_arch = "wasm32")]
        let _ = self.submission;
        let r = self.rx.await;
        ctx.check()?;
        r.map_err(|e| Error::Gpu(format!("reading a buffer back: {e}")))
    }
}

/// Copies `buffer[..len]` out after `pending` resolved, then unmaps it.
pub fn take(buffer: &wgpu::Buffer, len: u64) -> Result<Vec<u8>> {
    let out = {
        let view = buffer.slice(..len).get_mapped_range();
        let view = view.map_err(|e| Error::Gpu(format!("reading a buffer back: {e}")))?;
        view.to_vec()
    };
    buffer.unmap();
    Ok(out)
}

/// Maps, waits and copies: the whole readback of one buffer.
pub async fn read(ctx: &GpuContext, buffer: &wgpu::Buffer, len: u64, submission: wgpu::SubmissionIndex) -> Result<Vec<u8>> {
    request(buffer, len, submission).wait(ctx).await?;
    take(buffer, len)
}

/// Natively, for the kernel labs: copies each of `outs` to a readback buffer at the end of
/// `enc`, submits, waits and returns their bytes (then checks the device for errors).
#[cfg(not(target_arch = "wasm32"))]
pub fn submit_and_read(ctx: &GpuContext, mut enc: wgpu::CommandEncoder, outs: &[&wgpu::Buffer]) -> Result<Vec<Vec<u8>>> {
    use wgpu::BufferUsages as U;
    let rbs: Vec<_> = outs
        .iter()
        .map(|o| {
            let rb = super::kernels::buffer(ctx, "rb", o.size(), U::MAP_READ | U::COPY_DST);
            enc.copy_buffer_to_buffer(o, 0, &rb, 0, o.size());
            rb
        })
        .collect();
    let sub = ctx.queue.submit([enc.finish()]);
    let out = rbs.iter().map(|rb| pollster::block_on(read(ctx, rb, rb.size(), sub.clone()))).collect::<Result<Vec<_>>>()?;
    ctx.check()?;
    Ok(out)
}

/// Bytes to f32 (little-endian, as GPUs and wasm are).
pub fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
