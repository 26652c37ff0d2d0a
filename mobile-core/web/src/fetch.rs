//! The protocol's transport in the browser: `fetch` from the worker.

use std::cell::RefCell;
use std::time::Duration;

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use xuncha_core::sync::protocol::{Request, Response, Transport};

/// Longest wait for one answer.
const TIMEOUT: Duration = Duration::from_secs(60);

/// `fetch` against one server.
#[derive(Debug)]
pub(crate) struct Fetch {
    base: String,
    /// A request started early (the next pull page) and the promise of its answer.
    prefetched: RefCell<Option<(Request, Promise)>>,
}

impl Fetch {
    pub(crate) fn new(base_url: &str) -> Fetch {
        Fetch {
            base: base_url.trim_end_matches('/').to_owned(),
            prefetched: RefCell::new(None),
        }
    }

    /// Starts a request; the promise settles with the `Response` or a failure.
    fn start(&self, request: &Request) -> std::result::Result<Promise, String> {
        let init = web_sys::RequestInit::new();
        init.set_method(request.method.as_str());
        let headers = web_sys::Headers::new().map_err(describe)?;
        if let Some(token) = &request.bearer {
            headers
                .set("authorization", &format!("Bearer {token}"))
                .map_err(describe)?;
        }
        for (name, value) in &request.headers {
            headers.set(name, value).map_err(describe)?;
        }
        init.set_headers(&headers);
        if !request.body.is_empty() {
            init.set_body(&Uint8Array::from(request.body.as_slice()));
        }
        let timeout = web_sys::AbortSignal::timeout_with_u32(TIMEOUT.as_millis() as u32);
        init.set_signal(Some(&timeout));
        let url = format!("{}{}", self.base, request.path);
        let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
        Ok(scope.fetch_with_str_and_init(&url, &init))
    }
}

/// Waits for a started request and reads its whole answer.
async fn settle(promise: Promise) -> std::result::Result<Response, String> {
    let response: web_sys::Response = JsFuture::from(promise)
        .await
        .map_err(describe)?
        .unchecked_into();
    let mut headers = Vec::new();
    if let Ok(Some(entries)) = js_sys::try_iter(&response.headers()) {
        for entry in entries.flatten() {
            let pair: js_sys::Array = entry.unchecked_into();
            if let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                headers.push((name, value));
            }
        }
    }
    // A body cut off half-way is a failure to answer, retried like one.
    let body = JsFuture::from(response.array_buffer().map_err(describe)?)
        .await
        .map_err(|e| format!("reading the answer failed: {}", describe(e)))?;
    Ok(Response {
        status: response.status(),
        headers,
        body: Uint8Array::new(&body).to_vec(),
    })
}

/// What a JavaScript failure says.
fn describe(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

impl Transport for Fetch {
    async fn send(&self, request: &Request) -> std::result::Result<Response, String> {
        let early = self.prefetched.borrow_mut().take();
        // An early request not wanted after all is left to finish (a GET: harmless).
        if let Some((asked, promise)) = early
            && asked == *request
        {
            return settle(promise).await;
        }
        settle(self.start(request)?).await
    }

    async fn sleep(&self, duration: Duration) {
        let ms = duration.as_millis().min(i32::MAX as u128) as i32;
        let wait = Promise::new(&mut |resolve, _| {
            let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
            let _ = scope.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        });
        let _ = JsFuture::from(wait).await;
    }

    fn prefetch(&self, request: &Request) {
        if let Ok(promise) = self.start(request) {
            *self.prefetched.borrow_mut() = Some((request.clone(), promise));
        }
    }
}
