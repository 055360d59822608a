#include "weights.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace spindle {

size_t DTypeSize(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
  }
  return "?";
}

static std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("weights: cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    throw std::runtime_error("weights: cannot stat " + path + ": " + std::strerror(err));
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ > 0) {
    void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      close(fd);
      throw std::runtime_error("weights: cannot map " + path + ": " + std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  close(fd);  // the mapping keeps the file alive
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

int64_t HostTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

WeightFiles::WeightFiles(const std::vector<TensorSource>& sources) {
  for (const TensorSource& src : sources) {
    auto& file = files_[src.file];
    if (!file) file = std::make_shared<MappedFile>(src.file);
    HostTensor t;
    t.name = src.name;
    t.dtype = src.dtype;
    t.shape = src.shape;
    t.bytes = src.byte_length;
    for (int64_t d : t.shape) {
      if (d < 0) throw std::runtime_error("weights: tensor " + src.name + " has a negative dimension");
    }
    const uint64_t expected = static_cast<uint64_t>(t.numel()) * DTypeSize(t.dtype);
    if (expected != src.byte_length) {
      throw std::runtime_error("weights: tensor " + src.name + " in " + src.file + " is " +
                               std::to_string(src.byte_length) + " bytes, but " + DTypeName(t.dtype) +
                               ShapeString(t.shape) + " needs " + std::to_string(expected));
    }
    if (src.byte_offset > file->size() || src.byte_length > file->size() - src.byte_offset) {
      throw std::runtime_error("weights: tensor " + src.name + " lies at bytes [" +
                               std::to_string(src.byte_offset) + ", " +
                               std::to_string(src.byte_offset + src.byte_length) + ") but " + src.file +
                               " has only " + std::to_string(file->size()) + " bytes (truncated file?)");
    }
    t.data = file->data() + src.byte_offset;
    if (!tensors_.emplace(src.name, std::move(t)).second) {
      throw std::runtime_error("weights: tensor " + src.name + " is listed twice");
    }
  }
}

const HostTensor* WeightFiles::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<TensorSpec> ModelTensorSpecs(const ModelConfig& m) {
  const int64_t h = m.hidden_size, q = int64_t(m.num_heads) * m.head_dim, kv = int64_t(m.num_kv_heads) * m.head_dim;
  const int64_t inter = m.intermediate_size, vocab = m.vocab_size, hd = m.head_dim;
  std::vector<TensorSpec> specs;
  specs.push_back({"model.embed_tokens.weight", {vocab, h}});
  for (int32_t l = 0; l < m.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    specs.push_back({p + "input_layernorm.weight", {h}});
    specs.push_back({p + "self_attn.q_proj.weight", {q, h}});
    specs.push_back({p + "self_attn.k_proj.weight", {kv, h}});
    specs.push_back({p + "self_attn.v_proj.weight", {kv, h}});
    if (m.attention_bias) {
      specs.push_back({p + "self_attn.q_proj.bias", {q}});
      specs.push_back({p + "self_attn.k_proj.bias", {kv}});
      specs.push_back({p + "self_attn.v_proj.bias", {kv}});
    }
    if (m.qk_norm) {
      specs.push_back({p + "self_attn.q_norm.weight", {hd}});
      specs.push_back({p + "self_attn.k_norm.weight", {hd}});
    }
    specs.push_back({p + "self_attn.o_proj.weight", {h, q}});
    specs.push_back({p + "post_attention_layernorm.weight", {h}});
    specs.push_back({p + "mlp.gate_proj.weight", {inter, h}});
    specs.push_back({p + "mlp.up_proj.weight", {inter, h}});
    specs.push_back({p + "mlp.down_proj.weight", {h, inter}});
  }
  specs.push_back({"model.norm.weight", {h}});
  if (!m.tie_word_embeddings) specs.push_back({"lm_head.weight", {vocab, h}});
  return specs;
}

void CheckTensorShape(const HostTensor& tensor, const TensorSpec& spec) {
  if (tensor.shape != spec.shape) {
    throw std::runtime_error("weights: tensor " + spec.name + " has shape " + ShapeString(tensor.shape) +
                             ", the model config needs " + ShapeString(spec.shape));
  }
}

float Bf16ToF32(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float F16ToF32(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  uint32_t exp = (bits >> 10) & 0x1f, mant = bits & 0x3ff, u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);  // inf / nan
  } else if (exp != 0) {
    u = sign | ((exp + 112) << 23) | (mant << 13);  // normal: rebias 15 -> 127
  } else if (mant == 0) {
    u = sign;  // signed zero
  } else {
    // Subnormal half: normalize the mantissa into a normal float.
    int shift = 0;
    while (!(mant & 0x400)) { mant <<= 1; ++shift; }
    mant &= 0x3ff;
    u = sign | (static_cast<uint32_t>(113 - shift) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void ConvertToF32(const HostTensor& t, float* out) {
  const int64_t n = t.numel();
  if (t.dtype == DType::kF32) {
    std::memcpy(out, t.data, static_cast<size_t>(n) * 4);
    return;
  }
  // Copy through memcpy: the mapped data need not be 2-byte aligned.
  const uint8_t* src = static_cast<const uint8_t*>(t.data);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t bits;
    std::memcpy(&bits, src + 2 * i, 2);
    out[i] = t.dtype == DType::kBF16 ? Bf16ToF32(bits) : F16ToF32(bits);
  }
}

static bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

DummyRange DummyRangeFor(const TensorSpec& spec) {
  if (EndsWith(spec.name, "norm.weight")) return {1.f, 0.1f};
  if (spec.shape.size() < 2) return {0.f, 0.1f};
  return {0.f, 1.f / std::sqrt(static_cast<float>(spec.shape[1]))};
}

uint64_t DummyTensorKey(uint64_t seed, const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : name) { h ^= c; h *= 0x100000001b3ull; }
  return Mix64(h ^ Mix64(seed + 0x632BE59BD9B4E019ull));
}

void FillDummy(uint64_t seed, const TensorSpec& spec, float* out) {
  const DummyRange r = DummyRangeFor(spec);
  const uint64_t key = DummyTensorKey(seed, spec.name);
  int64_t n = 1;
  for (int64_t d : spec.shape) n *= d;
  for (int64_t i = 0; i < n; ++i) out[i] = DummyValue(key, static_cast<uint64_t>(i), r.center, r.scale);
}

}  // namespace spindle
