//! `s3-source`: the benchmarks' S3 source server. It serves `s3s-fs` (an S3-compatible server
//! keeping objects as local files, checking SigV4 signatures) on 127.0.0.1, with one change from
//! `s3s-fs`'s own binary: accepted connections get `TCP_NODELAY`, as S3's front ends behave.
//! Without it, a GET answered in two writes waited for the client's delayed ACK, and about one
//! small-object GET in three took 40 ms more, measuring the server's socket settings instead of
//! the copier. And GET bodies, whole or ranged, are read from the file in 256 KiB pieces instead
//! of s3s-fs's 4 KiB: each piece is a round trip through tokio's blocking pool, which at 4 KiB made
//! the server, not the network or the client, the limit of every large read (and with
//! `TCP_NODELAY` sent each 4 KiB as a packet of its own). Copies in parts read each part by a
//! ranged GET, all parts in flight at once: with 4 KiB pieces the source spent about 4 CPU
//! seconds per GiB, and a copy with 16 parts in flight waited for it at every wave of parts.
//! s3s-fs checks no `If-Match`; the benchmarks never change an object while it is copied. Only
//! the operations the benchmarks use are served. Prints `listening on ADDR` once ready.

use clap::Parser;
use futures::{Stream, TryStreamExt};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{S3Request, S3Response, S3Result, StdError, S3};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::TcpListener;
use tokio_util::io::ReaderStream;

#[derive(Parser)]
struct Opt {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Access key clients sign with.
    #[arg(long)]
    access_key: String,
    /// Secret key clients sign with.
    #[arg(long)]
    secret_key: String,
    /// Directory holding one directory per bucket.
    root: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opt = Opt::parse();
    let fs = s3s_fs::FileSystem::new(&opt.root)
        .map_err(|e| format!("cannot serve {}: {e:?}", opt.root.display()))?;
    let root = std::fs::canonicalize(&opt.root)?;
    let mut builder = S3ServiceBuilder::new(Source { fs, root });
    builder.set_auth(SimpleAuth::from_single(opt.access_key, opt.secret_key));
    let service = builder.build();
    let listener = TcpListener::bind(opt.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let (socket, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(_) => continue,
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        socket.set_nodelay(true)?;
        let conn = http
            .serve_connection(TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

/// Read size for GET bodies.
const CHUNK: usize = 256 * 1024;

/// A body of known length (so the answer has a `Content-Length`).
struct Sized<S> {
    body: S,
    length: usize,
}

impl<S: Stream + Unpin> Stream for Sized<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

impl<S: Stream + Unpin> ByteStream for Sized<S> {
    fn remaining_length(&self) -> RemainingLength {
        RemainingLength::new_exact(self.length)
    }
}

/// s3s-fs, with GET bodies (whole or ranged) read in [`CHUNK`]-byte pieces.
struct Source {
    fs: s3s_fs::FileSystem,
    root: PathBuf,
}

#[async_trait::async_trait]
impl S3 for Source {
    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        if req.input.part_number.is_some() {
            return self.fs.get_object(req).await;
        }
        let range = req.input.range;
        let path = self.root.join(&req.input.bucket).join(&req.input.key);
        // s3s-fs answers (and checks the range); only its body is replaced.
        let mut resp = self.fs.get_object(req).await?;
        let reopen =
            |e: std::io::Error| s3s::s3_error!(InternalError, "reopening {}: {e}", path.display());
        let mut file = tokio::fs::File::open(&path).await.map_err(reopen)?;
        let length = resp.output.content_length.unwrap_or(0) as usize;
        if let Some(range) = range {
            let size = file.metadata().await.map_err(reopen)?.len();
            let bytes = range
                .check(size)
                .map_err(|_| s3s::s3_error!(InvalidRange))?;
            file.seek(std::io::SeekFrom::Start(bytes.start))
                .await
                .map_err(reopen)?;
        }
        let body =
            ReaderStream::with_capacity(file.take(length as u64), CHUNK).map_err(StdError::from);
        resp.output.body = Some(StreamingBlob::new(Sized { body, length }));
        Ok(resp)
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.fs.head_object(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.fs.put_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        // Copies in parts remove their checkpoint (in the results bucket) when done.
        self.fs.delete_object(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        self.fs.get_object_tagging(req).await
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }
}
