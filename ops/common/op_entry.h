// The kernel functions of an extension module as plain C entry points, for callers that are not
// Python: the torch operators' C++ implementation (ops/torch) calls them straight from
// PyTorch's dispatcher, with no Python object made and no DLPack export per call.
//
// A module exports one fdops_op_entries (capsule `_op_entries`, named kOpEntriesCapsule). Each
// entry runs the same C++ function as the module's Python binding of that name: the same checks,
// the same errors, the same launch. Arguments are the binding's, in its order, the stream
// excluded (it is passed on its own). This header is C so that both sides can be built with
// different compilers and standard libraries; change FDOPS_OP_ENTRIES_ABI with any layout change.
#ifndef FDOPS_OPS_COMMON_OP_ENTRY_H_
#define FDOPS_OPS_COMMON_OP_ENTRY_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FDOPS_OP_ENTRIES_ABI 1u
#define FDOPS_OP_ENTRIES_CAPSULE "fastdeploy_ops.op_entries.v1"

// A tensor argument: DLPack's fields (device and dtype codes are DLPack's), borrowed for the
// call. `data` already includes any byte offset.
typedef struct fdops_tensor {
  void* data;
  const int64_t* shape;
  const int64_t* strides;  // in elements
  int32_t ndim;
  int32_t device_type;
  int32_t device_id;
  uint8_t dtype_code;
  uint8_t dtype_bits;
  uint16_t dtype_lanes;
} fdops_tensor;

typedef enum fdops_value_kind {
  FDOPS_VALUE_NONE = 0,  // an optional tensor that was not given
  FDOPS_VALUE_TENSOR = 1,
  FDOPS_VALUE_INT = 2,
  FDOPS_VALUE_FLOAT = 3,
  FDOPS_VALUE_BOOL = 4,
} fdops_value_kind;

typedef struct fdops_value {
  int32_t kind;  // fdops_value_kind
  union {
    fdops_tensor tensor;
    int64_t integer;
    double real;
    int32_t boolean;
  } as;
} fdops_value;

// What a call returned; the error statuses name the Python exception the binding would raise.
typedef enum fdops_status {
  FDOPS_OK = 0,
  FDOPS_TYPE_ERROR = 1,
  FDOPS_VALUE_ERROR = 2,
  FDOPS_RUNTIME_ERROR = 3,
} fdops_status;

// Runs entry `op` on `args` (nargs values) on `stream`; on an error writes its message
// (NUL-terminated, truncated to message_size) and returns its status. Never throws.
typedef int32_t (*fdops_op_call)(const void* op, const fdops_value* args, int32_t nargs,
                                 uintptr_t stream, char* message, size_t message_size);

typedef struct fdops_op_entry {
  const char* name;  // the binding's name, e.g. "gelu_tanh"
  const void* op;
  fdops_op_call call;
} fdops_op_entry;

typedef struct fdops_op_entries {
  uint32_t abi;  // FDOPS_OP_ENTRIES_ABI
  uint32_t count;
  const fdops_op_entry* entries;
} fdops_op_entries;

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // FDOPS_OPS_COMMON_OP_ENTRY_H_
