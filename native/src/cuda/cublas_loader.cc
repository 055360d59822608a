#include "cublas_loader.h"

#include <dlfcn.h>

#include <mutex>
#include <stdexcept>

namespace spindle::cuda {
namespace {

template <typename Fn>
void Resolve(void* lib, const char* symbol, Fn* out) {
  void* p = dlsym(lib, symbol);
  if (!p) throw std::runtime_error(std::string("cuBLAS: symbol ") + symbol + " not found");
  *out = reinterpret_cast<Fn>(p);
}

CublasApi LoadOnce() {
  const char* candidates[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
  std::string errors;
  void* lib = nullptr;
  CublasApi api;
  for (const char* name : candidates) {
    lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (lib) {
      api.library = name;
      break;
    }
    const char* e = dlerror();
    errors += std::string(" [") + name + ": " + (e ? e : "?") + "]";
  }
  if (!lib) throw std::runtime_error("cuBLAS not found (needed by the CUDA backend):" + errors);
  Resolve(lib, "cublasCreate_v2", &api.Create);
  Resolve(lib, "cublasDestroy_v2", &api.Destroy);
  Resolve(lib, "cublasSetStream_v2", &api.SetStream);
  Resolve(lib, "cublasSetWorkspace_v2", &api.SetWorkspace);
  Resolve(lib, "cublasSetMathMode", &api.SetMathMode);
  Resolve(lib, "cublasGemmEx", &api.GemmEx);
  return api;
}

}  // namespace

const CublasApi& LoadCublas() {
  static std::once_flag once;
  static CublasApi api;
  static std::string error;
  std::call_once(once, [] {
    try {
      api = LoadOnce();
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw std::runtime_error(error);
  return api;
}

void CublasCheck(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLAS error ") + std::to_string(static_cast<int>(status)) + " in " + what);
}

}  // namespace spindle::cuda
