package gpu

// This file is the package's only foreign boundary. Every C function the
// package calls is declared here once, with its C prototype, and resolved at
// run time with purego from the CUDA libraries found by the dynamic loader
// (LD_LIBRARY_PATH, then the system paths). Nothing here runs at import.
//
// Rules (see docs/gpu.md):
//   - versioned driver symbols are resolved by their real names
//     (cuMemAlloc_v2, …), library symbols likewise (cublasSgemm_v2, …);
//   - no function taking or returning a struct by value is bound;
//   - every argument is an integer or a pointer: host scalars such as
//     cuBLAS's alpha and beta are passed by pointer (host pointer mode);
//   - sonames are tried newest first.

import (
	"errors"
	"sync"
	"unsafe"
)

// cuda holds the resolved entry points. Field names are the C names.
type cudaAPI struct {
	// ---- CUDA driver API, libcuda.so.1 ----

	// CUresult cuInit(unsigned int Flags);
	cuInit func(flags uint32) int32
	// CUresult cuDriverGetVersion(int *driverVersion);
	cuDriverGetVersion func(v *int32) int32
	// CUresult cuGetErrorName(CUresult error, const char **pStr);
	cuGetErrorName func(code int32, s *uintptr) int32
	// CUresult cuDeviceGetCount(int *count);
	cuDeviceGetCount func(n *int32) int32
	// CUresult cuDeviceGet(CUdevice *device, int ordinal);
	cuDeviceGet func(dev *int32, ordinal int32) int32
	// CUresult cuDeviceGetName(char *name, int len, CUdevice dev);
	cuDeviceGetName func(name *byte, n int32, dev int32) int32
	// CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev);
	cuDeviceGetAttribute func(v *int32, attr int32, dev int32) int32
	// CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev);
	cuDevicePrimaryCtxRetain func(ctx *uintptr, dev int32) int32
	// CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev);
	cuDevicePrimaryCtxRelease func(dev int32) int32
	// CUresult cuCtxSetCurrent(CUcontext ctx);
	cuCtxSetCurrent func(ctx uintptr) int32
	// CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize);
	cuMemAlloc func(p *uintptr, size uintptr) int32
	// CUresult cuMemFree_v2(CUdeviceptr dptr);
	cuMemFree func(p uintptr) int32
	// CUresult cuMemAllocHost_v2(void **pp, size_t bytesize);
	cuMemAllocHost func(p *unsafe.Pointer, size uintptr) int32
	// CUresult cuMemFreeHost(void *p);
	cuMemFreeHost func(p unsafe.Pointer) int32
	// CUresult cuMemGetInfo_v2(size_t *free, size_t *total);
	cuMemGetInfo func(free, total *uintptr) int32
	// CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s);
	cuMemcpyHtoDAsync func(dst uintptr, src unsafe.Pointer, n uintptr, s uintptr) int32
	// CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream s);
	cuMemcpyDtoHAsync func(dst unsafe.Pointer, src uintptr, n uintptr, s uintptr) int32
	// CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s);
	cuMemcpyDtoDAsync func(dst, src uintptr, n uintptr, s uintptr) int32
	// CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char uc, size_t n, CUstream s);
	cuMemsetD8Async func(dst uintptr, v uint8, n uintptr, s uintptr) int32
	// CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags);
	cuStreamCreate func(s *uintptr, flags uint32) int32
	// CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority);
	cuStreamCreateWithPriority func(s *uintptr, flags uint32, priority int32) int32
	// CUresult cuStreamGetPriority(CUstream hStream, int *priority);
	cuStreamGetPriority func(s uintptr, priority *int32) int32
	// CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority);
	cuCtxGetStreamPriorityRange func(least, greatest *int32) int32
	// CUresult cuStreamDestroy_v2(CUstream hStream);
	cuStreamDestroy func(s uintptr) int32
	// CUresult cuStreamSynchronize(CUstream hStream);
	cuStreamSynchronize func(s uintptr) int32
	// CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags);
	cuEventCreate func(e *uintptr, flags uint32) int32
	// CUresult cuEventRecord(CUevent hEvent, CUstream hStream);
	cuEventRecord func(e, s uintptr) int32
	// CUresult cuEventSynchronize(CUevent hEvent);
	cuEventSynchronize func(e uintptr) int32
	// CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd);
	// (cuEventElapsedTime before CUDA 12.8; same prototype.)
	cuEventElapsedTime func(ms *float32, start, end uintptr) int32
	// CUresult cuEventDestroy_v2(CUevent hEvent);
	cuEventDestroy func(e uintptr) int32
	// CUresult cuProfilerStart(void); CUresult cuProfilerStop(void);
	// (optional: nil where the driver lacks them).
	cuProfilerStart, cuProfilerStop func() int32
	// CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags);
	cuStreamWaitEvent func(s, e uintptr, flags uint32) int32
	// CUresult cuModuleLoadData(CUmodule *module, const void *image);
	cuModuleLoadData func(m *uintptr, image unsafe.Pointer) int32
	// CUresult cuModuleUnload(CUmodule hmod);
	cuModuleUnload func(m uintptr) int32
	// CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name);
	cuModuleGetFunction func(f *uintptr, m uintptr, name *byte) int32
	// CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value);
	cuFuncSetAttribute func(f uintptr, attr int32, v int32) int32
	// CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc);
	cuFuncGetAttribute func(v *int32, attr int32, f uintptr) int32
	// CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func, int blockSize,
	//     size_t dynamicSMemSize);
	cuOccupancyMaxActiveBlocksPerMultiprocessor func(n *int32, f uintptr, block int32, smem uintptr) int32
	// CUresult cuLaunchKernel(CUfunction f, unsigned gridDimX, unsigned gridDimY, unsigned gridDimZ,
	//     unsigned blockDimX, unsigned blockDimY, unsigned blockDimZ, unsigned sharedMemBytes,
	//     CUstream hStream, void **kernelParams, void **extra);
	cuLaunchKernel func(f uintptr, gx, gy, gz, bx, by, bz, shmem uint32, s uintptr, params unsafe.Pointer, extra uintptr) int32

	// ---- NVRTC, libnvrtc.so.13 / .12 ----

	// nvrtcResult nvrtcCreateProgram(nvrtcProgram *prog, const char *src, const char *name,
	//     int numHeaders, const char * const *headers, const char * const *includeNames);
	nvrtcCreateProgram func(p *uintptr, src, name *byte, nh int32, headers, names uintptr) int32
	// nvrtcResult nvrtcCompileProgram(nvrtcProgram prog, int numOptions, const char * const *options);
	nvrtcCompileProgram func(p uintptr, n int32, opts unsafe.Pointer) int32
	// nvrtcResult nvrtcGetCUBINSize(nvrtcProgram prog, size_t *cubinSizeRet);
	nvrtcGetCUBINSize func(p uintptr, n *uintptr) int32
	// nvrtcResult nvrtcGetCUBIN(nvrtcProgram prog, char *cubin);
	nvrtcGetCUBIN func(p uintptr, dst *byte) int32
	// nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram prog, size_t *logSizeRet);
	nvrtcGetProgramLogSize func(p uintptr, n *uintptr) int32
	// nvrtcResult nvrtcGetProgramLog(nvrtcProgram prog, char *log);
	nvrtcGetProgramLog func(p uintptr, dst *byte) int32
	// nvrtcResult nvrtcDestroyProgram(nvrtcProgram *prog);
	nvrtcDestroyProgram func(p *uintptr) int32

	// ---- cuBLAS, libcublas.so.13 / .12 ----

	// cublasStatus_t cublasCreate_v2(cublasHandle_t *handle);
	cublasCreate func(h *uintptr) int32
	// cublasStatus_t cublasDestroy_v2(cublasHandle_t handle);
	cublasDestroy func(h uintptr) int32
	// cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId);
	cublasSetStream func(h, s uintptr) int32
	// cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode);
	cublasSetMathMode func(h uintptr, mode int32) int32
	// cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void *workspace, size_t workspaceSizeInBytes);
	cublasSetWorkspace func(h uintptr, ws uintptr, size uintptr) int32
	// cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
	//     int m, int n, int k, const void *alpha, const void *A, cudaDataType Atype, int lda,
	//     const void *B, cudaDataType Btype, int ldb, const void *beta, void *C, cudaDataType Ctype, int ldc,
	//     cublasComputeType_t computeType, cublasGemmAlgo_t algo);
	cublasGemmEx func(h uintptr, ta, tb int32, m, n, k int32, alpha unsafe.Pointer, a uintptr, at int32, lda int32,
		b uintptr, bt int32, ldb int32, beta unsafe.Pointer, c uintptr, ct int32, ldc int32, compute int32, algo int32) int32
	// cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
	//     cublasOperation_t transb, int m, int n, int k, const void *alpha, const void *A, cudaDataType Atype,
	//     int lda, long long int strideA, const void *B, cudaDataType Btype, int ldb, long long int strideB,
	//     const void *beta, void *C, cudaDataType Ctype, int ldc, long long int strideC, int batchCount,
	//     cublasComputeType_t computeType, cublasGemmAlgo_t algo);
	cublasGemmStridedBatchedEx func(h uintptr, ta, tb int32, m, n, k int32, alpha unsafe.Pointer, a uintptr, at int32, lda int32, sa int64,
		b uintptr, bt int32, ldb int32, sb int64, beta unsafe.Pointer, c uintptr, ct int32, ldc int32, sc int64, count int32, compute int32, algo int32) int32
	// cublasStatus_t cublasGemmBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
	//     cublasOperation_t transb, int m, int n, int k, const void *alpha, const void *const Aarray[],
	//     cudaDataType Atype, int lda, const void *const Barray[], cudaDataType Btype, int ldb,
	//     const void *beta, void *const Carray[], cudaDataType Ctype, int ldc, int batchCount,
	//     cublasComputeType_t computeType, cublasGemmAlgo_t algo);
	cublasGemmBatchedEx func(h uintptr, ta, tb int32, m, n, k int32, alpha unsafe.Pointer, a uintptr, at int32, lda int32,
		b uintptr, bt int32, ldb int32, beta unsafe.Pointer, c uintptr, ct int32, ldc int32, count int32, compute int32, algo int32) int32
	// cublasStatus_t cublasSsyrk_v2(cublasHandle_t handle, cublasFillMode_t uplo, cublasOperation_t trans,
	//     int n, int k, const float *alpha, const float *A, int lda, const float *beta, float *C, int ldc);
	cublasSsyrk func(h uintptr, uplo, trans int32, n, k int32, alpha unsafe.Pointer, a uintptr, lda int32, beta unsafe.Pointer, c uintptr, ldc int32) int32
	// cublasStatus_t cublasDsyrk_v2(… same with double …);
	cublasDsyrk func(h uintptr, uplo, trans int32, n, k int32, alpha unsafe.Pointer, a uintptr, lda int32, beta unsafe.Pointer, c uintptr, ldc int32) int32
	// cublasStatus_t cublasDgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
	//     int m, int n, int k, const double *alpha, const double *A, int lda, const double *B, int ldb,
	//     const double *beta, double *C, int ldc);
	cublasDgemm func(h uintptr, ta, tb int32, m, n, k int32, alpha unsafe.Pointer, a uintptr, lda int32, b uintptr, ldb int32, beta unsafe.Pointer, c uintptr, ldc int32) int32
	// cublasStatus_t cublasDtrsm_v2(cublasHandle_t handle, cublasSideMode_t side, cublasFillMode_t uplo,
	//     cublasOperation_t trans, cublasDiagType_t diag, int m, int n, const double *alpha,
	//     const double *A, int lda, double *B, int ldb);
	cublasDtrsm func(h uintptr, side, uplo, trans, diag int32, m, n int32, alpha unsafe.Pointer, a uintptr, lda int32, b uintptr, ldb int32) int32

	// ---- cuBLASLt, libcublasLt.so (optional: nil where it is missing) ----

	// cublasStatus_t cublasLtCreate(cublasLtHandle_t *handle);
	cublasLtCreate func(h *uintptr) int32
	// cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle);
	cublasLtDestroy func(h uintptr) int32
	// cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc, cublasComputeType_t compute, cudaDataType_t scale);
	cublasLtMatmulDescCreate func(d *uintptr, compute, scale int32) int32
	// cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc);
	cublasLtMatmulDescDestroy func(d uintptr) int32
	// cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
	//     const void *buf, size_t size);
	cublasLtMatmulDescSetAttribute func(d uintptr, attr int32, buf unsafe.Pointer, size uintptr) int32
	// cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout, cudaDataType type,
	//     uint64_t rows, uint64_t cols, int64_t ld);
	cublasLtMatrixLayoutCreate func(l *uintptr, typ int32, rows, cols uint64, ld int64) int32
	// cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout);
	cublasLtMatrixLayoutDestroy func(l uintptr) int32
	// cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref);
	cublasLtMatmulPreferenceCreate func(p *uintptr) int32
	// cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref);
	cublasLtMatmulPreferenceDestroy func(p uintptr) int32
	// cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
	//     cublasLtMatmulPreferenceAttributes_t attr, const void *buf, size_t size);
	cublasLtMatmulPreferenceSetAttribute func(p uintptr, attr int32, buf unsafe.Pointer, size uintptr) int32
	// cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t desc,
	//     cublasLtMatrixLayout_t A, cublasLtMatrixLayout_t B, cublasLtMatrixLayout_t C, cublasLtMatrixLayout_t D,
	//     cublasLtMatmulPreference_t pref, int requested, cublasLtMatmulHeuristicResult_t results[], int *returned);
	cublasLtMatmulAlgoGetHeuristic func(h, desc, la, lb, lc, ld, pref uintptr, requested int32, results unsafe.Pointer, returned *int32) int32
	// cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t desc, const void *alpha,
	//     const void *A, cublasLtMatrixLayout_t Adesc, const void *B, cublasLtMatrixLayout_t Bdesc,
	//     const void *beta, const void *C, cublasLtMatrixLayout_t Cdesc, void *D, cublasLtMatrixLayout_t Ddesc,
	//     const cublasLtMatmulAlgo_t *algo, void *workspace, size_t workspaceSize, cudaStream_t stream);
	cublasLtMatmul func(h, desc uintptr, alpha unsafe.Pointer, a, la uintptr, b, lb uintptr, beta unsafe.Pointer,
		c, lc, d, ld uintptr, algo unsafe.Pointer, ws, wsSize, stream uintptr) int32

	// ---- cuSOLVER, libcusolver.so.12 / .11 ----

	// cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t *handle);
	cusolverDnCreate func(h *uintptr) int32
	// cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t handle);
	cusolverDnDestroy func(h uintptr) int32
	// cusolverStatus_t cusolverDnSetStream(cusolverDnHandle_t handle, cudaStream_t streamId);
	cusolverDnSetStream func(h, s uintptr) int32
	// cusolverStatus_t cusolverDnSgeqrf_bufferSize(cusolverDnHandle_t h, int m, int n, float *A, int lda, int *lwork);
	cusolverDnSgeqrfBufferSize func(h uintptr, m, n int32, a uintptr, lda int32, lwork *int32) int32
	// cusolverStatus_t cusolverDnSgeqrf(cusolverDnHandle_t h, int m, int n, float *A, int lda, float *tau,
	//     float *work, int lwork, int *devInfo);
	cusolverDnSgeqrf func(h uintptr, m, n int32, a uintptr, lda int32, tau, work uintptr, lwork int32, info uintptr) int32
	// cusolverStatus_t cusolverDnSorgqr_bufferSize(cusolverDnHandle_t h, int m, int n, int k, const float *A,
	//     int lda, const float *tau, int *lwork);
	cusolverDnSorgqrBufferSize func(h uintptr, m, n, k int32, a uintptr, lda int32, tau uintptr, lwork *int32) int32
	// cusolverStatus_t cusolverDnSorgqr(cusolverDnHandle_t h, int m, int n, int k, float *A, int lda,
	//     const float *tau, float *work, int lwork, int *devInfo);
	cusolverDnSorgqr func(h uintptr, m, n, k int32, a uintptr, lda int32, tau, work uintptr, lwork int32, info uintptr) int32
	// cusolverStatus_t cusolverDnSgetrf_bufferSize(cusolverDnHandle_t h, int m, int n, float *A, int lda, int *Lwork);
	cusolverDnSgetrfBufferSize func(h uintptr, m, n int32, a uintptr, lda int32, lwork *int32) int32
	// cusolverStatus_t cusolverDnSgetrf(cusolverDnHandle_t h, int m, int n, float *A, int lda, float *Workspace,
	//     int *devIpiv, int *devInfo);
	cusolverDnSgetrf func(h uintptr, m, n int32, a uintptr, lda int32, work, ipiv, info uintptr) int32
	// cusolverStatus_t cusolverDnDpotrf_bufferSize(cusolverDnHandle_t h, cublasFillMode_t uplo, int n,
	//     double *A, int lda, int *Lwork);
	cusolverDnDpotrfBufferSize func(h uintptr, uplo, n int32, a uintptr, lda int32, lwork *int32) int32
	// cusolverStatus_t cusolverDnDpotrfBatched(cusolverDnHandle_t handle, cublasFillMode_t uplo, int n,
	//     double *Aarray[], int lda, int *infoArray, int batchSize);
	cusolverDnDpotrfBatched func(h uintptr, uplo, n int32, aarray uintptr, lda int32, info uintptr, batch int32) int32
	// cusolverStatus_t cusolverDnDpotrf(cusolverDnHandle_t h, cublasFillMode_t uplo, int n, double *A, int lda,
	//     double *Workspace, int Lwork, int *devInfo);
	cusolverDnDpotrf func(h uintptr, uplo, n int32, a uintptr, lda int32, work uintptr, lwork int32, info uintptr) int32
	// cusolverStatus_t cusolverDnCreateGesvdjInfo(gesvdjInfo_t *info);
	cusolverDnCreateGesvdjInfo func(p *uintptr) int32
	// cusolverStatus_t cusolverDnDestroyGesvdjInfo(gesvdjInfo_t info);
	cusolverDnDestroyGesvdjInfo func(p uintptr) int32
	// cusolverStatus_t cusolverDnSgesvdj_bufferSize(cusolverDnHandle_t h, cusolverEigMode_t jobz, int econ,
	//     int m, int n, const float *A, int lda, const float *S, const float *U, int ldu, const float *V, int ldv,
	//     int *lwork, gesvdjInfo_t params);
	cusolverDnSgesvdjBufferSize func(h uintptr, jobz, econ, m, n int32, a uintptr, lda int32, s, u uintptr, ldu int32, v uintptr, ldv int32, lwork *int32, params uintptr) int32
	// cusolverStatus_t cusolverDnSgesvdj(cusolverDnHandle_t h, cusolverEigMode_t jobz, int econ, int m, int n,
	//     float *A, int lda, float *S, float *U, int ldu, float *V, int ldv, float *work, int lwork, int *info,
	//     gesvdjInfo_t params);
	cusolverDnSgesvdj func(h uintptr, jobz, econ, m, n int32, a uintptr, lda int32, s, u uintptr, ldu int32, v uintptr, ldv int32, work uintptr, lwork int32, info uintptr, params uintptr) int32
	// cusolverStatus_t cusolverDnDsyevd_bufferSize(cusolverDnHandle_t h, cusolverEigMode_t jobz,
	//     cublasFillMode_t uplo, int n, const double *A, int lda, const double *W, int *lwork);
	cusolverDnDsyevdBufferSize func(h uintptr, jobz, uplo, n int32, a uintptr, lda int32, w uintptr, lwork *int32) int32
	// cusolverStatus_t cusolverDnDsyevd(cusolverDnHandle_t h, cusolverEigMode_t jobz, cublasFillMode_t uplo,
	//     int n, double *A, int lda, double *W, double *work, int lwork, int *devInfo);
	cusolverDnDsyevd func(h uintptr, jobz, uplo, n int32, a uintptr, lda int32, w, work uintptr, lwork int32, info uintptr) int32
	// cusolverStatus_t cusolverDnDsyevdx_bufferSize(cusolverDnHandle_t h, cusolverEigMode_t jobz,
	//     cusolverEigRange_t range, cublasFillMode_t uplo, int n, const double *A, int lda, double vl,
	//     double vu, int il, int iu, int *h_meig, const double *W, int *lwork);
	cusolverDnDsyevdxBufferSize func(h uintptr, jobz, rng, uplo, n int32, a uintptr, lda int32, vl, vu float64, il, iu int32, meig *int32, w uintptr, lwork *int32) int32
	// cusolverStatus_t cusolverDnDsyevdx(cusolverDnHandle_t h, cusolverEigMode_t jobz, cusolverEigRange_t range,
	//     cublasFillMode_t uplo, int n, double *A, int lda, double vl, double vu, int il, int iu, int *h_meig,
	//     double *W, double *work, int lwork, int *devInfo);
	cusolverDnDsyevdx func(h uintptr, jobz, rng, uplo, n int32, a uintptr, lda int32, vl, vu float64, il, iu int32, meig *int32, w, work uintptr, lwork int32, info uintptr) int32
}

// Constants of the C APIs used above.
const (
	cuStreamNonBlocking          = 1
	cuEventDisableTiming         = 2
	cuAttrComputeCapabilityMajor = 75
	cuAttrComputeCapabilityMinor = 76
	cuAttrMultiprocessorCount    = 16
	cuAttrMaxSharedPerBlockOptin = 97
	cuFuncAttrMaxDynamicShared   = 8
	cuFuncAttrLocalSize          = 3 // CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES
	cuFuncAttrNumRegs            = 4 // CU_FUNC_ATTRIBUTE_NUM_REGS

	cublasOpN              = 0
	cublasOpT              = 1
	cublasFillUpper        = 1
	cublasSideRight        = 1
	cublasDiagNonUnit      = 0
	cublasDefaultMath      = 0
	cublasTF32TensorOpMath = 3
	cudaR32F               = 0
	cudaR64F               = 1
	cudaR16BF              = 14
	cublasCompute32F       = 68
	cublasCompute32FFastTF = 77
	cublasGemmDefault      = -1
	cusolverEigModeVector  = 1
	cusolverEigRangeI      = 1002     // the il-th through iu-th eigenpairs
	cublasWorkspaceBytes   = 32 << 20 // NVIDIA's recommendation for Hopper
)

// Sonames tried in order, newest first.
var (
	sonamesCUDA     = []string{"libcuda.so.1", "libcuda.so"}
	sonamesNVRTC    = []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"}
	sonamesCUBLAS   = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so"}
	sonamesCUSOLVER = []string{"libcusolver.so.12", "libcusolver.so.11", "libcusolver.so"}
	sonamesCUBLASLT = []string{"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}
)

var (
	loadOnce sync.Once
	api      *cudaAPI
	errLoad  error
)

// load resolves every symbol once per process. It is called by Open and
// Available, never at import.
func load() (*cudaAPI, error) {
	loadOnce.Do(func() {
		a := new(cudaAPI)
		errLoad = a.bind()
		if errLoad == nil {
			api = a
		}
	})
	return api, errLoad
}

func (a *cudaAPI) bind() error {
	cu, _, err := openLib(sonamesCUDA)
	if err != nil {
		return err
	}
	type binding struct {
		f    any
		name string
	}
	bindAll := func(lib uintptr, bs []binding) error {
		var errs []error
		for _, b := range bs {
			if err := sym(lib, b.f, b.name); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	if err := bindAll(cu, []binding{
		{&a.cuInit, "cuInit"},
		{&a.cuDriverGetVersion, "cuDriverGetVersion"},
		{&a.cuGetErrorName, "cuGetErrorName"},
		{&a.cuDeviceGetCount, "cuDeviceGetCount"},
		{&a.cuDeviceGet, "cuDeviceGet"},
		{&a.cuDeviceGetName, "cuDeviceGetName"},
		{&a.cuDeviceGetAttribute, "cuDeviceGetAttribute"},
		{&a.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
		{&a.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"},
		{&a.cuCtxSetCurrent, "cuCtxSetCurrent"},
		{&a.cuMemAlloc, "cuMemAlloc_v2"},
		{&a.cuMemFree, "cuMemFree_v2"},
		{&a.cuMemAllocHost, "cuMemAllocHost_v2"},
		{&a.cuMemFreeHost, "cuMemFreeHost"},
		{&a.cuMemGetInfo, "cuMemGetInfo_v2"},
		{&a.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"},
		{&a.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"},
		{&a.cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"},
		{&a.cuMemsetD8Async, "cuMemsetD8Async"},
		{&a.cuStreamCreate, "cuStreamCreate"},
		{&a.cuStreamCreateWithPriority, "cuStreamCreateWithPriority"},
		{&a.cuStreamGetPriority, "cuStreamGetPriority"},
		{&a.cuCtxGetStreamPriorityRange, "cuCtxGetStreamPriorityRange"},
		{&a.cuStreamDestroy, "cuStreamDestroy_v2"},
		{&a.cuStreamSynchronize, "cuStreamSynchronize"},
		{&a.cuEventCreate, "cuEventCreate"},
		{&a.cuEventRecord, "cuEventRecord"},
		{&a.cuEventSynchronize, "cuEventSynchronize"},
		{&a.cuEventDestroy, "cuEventDestroy_v2"},
		{&a.cuStreamWaitEvent, "cuStreamWaitEvent"},
		{&a.cuModuleLoadData, "cuModuleLoadData"},
		{&a.cuModuleUnload, "cuModuleUnload"},
		{&a.cuModuleGetFunction, "cuModuleGetFunction"},
		{&a.cuFuncSetAttribute, "cuFuncSetAttribute"},
		{&a.cuFuncGetAttribute, "cuFuncGetAttribute"},
		{&a.cuOccupancyMaxActiveBlocksPerMultiprocessor, "cuOccupancyMaxActiveBlocksPerMultiprocessor"},
		{&a.cuLaunchKernel, "cuLaunchKernel"},
	}); err != nil {
		return err
	}
	if sym(cu, &a.cuProfilerStart, "cuProfilerStart") != nil || sym(cu, &a.cuProfilerStop, "cuProfilerStop") != nil {
		a.cuProfilerStart, a.cuProfilerStop = nil, nil
	}
	if sym(cu, &a.cuEventElapsedTime, "cuEventElapsedTime_v2") != nil {
		if err := sym(cu, &a.cuEventElapsedTime, "cuEventElapsedTime"); err != nil {
			return err
		}
	}
	nv, _, err := openLib(sonamesNVRTC)
	if err != nil {
		return err
	}
	if err := bindAll(nv, []binding{
		{&a.nvrtcCreateProgram, "nvrtcCreateProgram"},
		{&a.nvrtcCompileProgram, "nvrtcCompileProgram"},
		{&a.nvrtcGetCUBINSize, "nvrtcGetCUBINSize"},
		{&a.nvrtcGetCUBIN, "nvrtcGetCUBIN"},
		{&a.nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize"},
		{&a.nvrtcGetProgramLog, "nvrtcGetProgramLog"},
		{&a.nvrtcDestroyProgram, "nvrtcDestroyProgram"},
	}); err != nil {
		return err
	}
	bl, _, err := openLib(sonamesCUBLAS)
	if err != nil {
		return err
	}
	if err := bindAll(bl, []binding{
		{&a.cublasCreate, "cublasCreate_v2"},
		{&a.cublasDestroy, "cublasDestroy_v2"},
		{&a.cublasSetStream, "cublasSetStream_v2"},
		{&a.cublasSetMathMode, "cublasSetMathMode"},
		{&a.cublasSetWorkspace, "cublasSetWorkspace_v2"},
		{&a.cublasGemmEx, "cublasGemmEx"},
		{&a.cublasGemmStridedBatchedEx, "cublasGemmStridedBatchedEx"},
		{&a.cublasGemmBatchedEx, "cublasGemmBatchedEx"},
		{&a.cublasSsyrk, "cublasSsyrk_v2"},
		{&a.cublasDsyrk, "cublasDsyrk_v2"},
		{&a.cublasDgemm, "cublasDgemm_v2"},
		{&a.cublasDtrsm, "cublasDtrsm_v2"},
	}); err != nil {
		return err
	}
	// cuBLASLt is optional (Backend.MulBias falls back without it): a
	// missing library or symbol leaves every cublasLt field nil.
	if lt, _, err := openLib(sonamesCUBLASLT); err == nil {
		if bindAll(lt, []binding{
			{&a.cublasLtCreate, "cublasLtCreate"},
			{&a.cublasLtDestroy, "cublasLtDestroy"},
			{&a.cublasLtMatmulDescCreate, "cublasLtMatmulDescCreate"},
			{&a.cublasLtMatmulDescDestroy, "cublasLtMatmulDescDestroy"},
			{&a.cublasLtMatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute"},
			{&a.cublasLtMatrixLayoutCreate, "cublasLtMatrixLayoutCreate"},
			{&a.cublasLtMatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy"},
			{&a.cublasLtMatmulPreferenceCreate, "cublasLtMatmulPreferenceCreate"},
			{&a.cublasLtMatmulPreferenceDestroy, "cublasLtMatmulPreferenceDestroy"},
			{&a.cublasLtMatmulPreferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute"},
			{&a.cublasLtMatmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic"},
			{&a.cublasLtMatmul, "cublasLtMatmul"},
		}) != nil {
			a.cublasLtCreate = nil
		}
	}
	so, _, err := openLib(sonamesCUSOLVER)
	if err != nil {
		return err
	}
	return bindAll(so, []binding{
		{&a.cusolverDnCreate, "cusolverDnCreate"},
		{&a.cusolverDnDestroy, "cusolverDnDestroy"},
		{&a.cusolverDnSetStream, "cusolverDnSetStream"},
		{&a.cusolverDnSgeqrfBufferSize, "cusolverDnSgeqrf_bufferSize"},
		{&a.cusolverDnSgeqrf, "cusolverDnSgeqrf"},
		{&a.cusolverDnSorgqrBufferSize, "cusolverDnSorgqr_bufferSize"},
		{&a.cusolverDnSorgqr, "cusolverDnSorgqr"},
		{&a.cusolverDnSgetrfBufferSize, "cusolverDnSgetrf_bufferSize"},
		{&a.cusolverDnSgetrf, "cusolverDnSgetrf"},
		{&a.cusolverDnDpotrfBufferSize, "cusolverDnDpotrf_bufferSize"},
		{&a.cusolverDnDpotrf, "cusolverDnDpotrf"},
		{&a.cusolverDnDpotrfBatched, "cusolverDnDpotrfBatched"},
		{&a.cusolverDnCreateGesvdjInfo, "cusolverDnCreateGesvdjInfo"},
		{&a.cusolverDnDestroyGesvdjInfo, "cusolverDnDestroyGesvdjInfo"},
		{&a.cusolverDnSgesvdjBufferSize, "cusolverDnSgesvdj_bufferSize"},
		{&a.cusolverDnSgesvdj, "cusolverDnSgesvdj"},
		{&a.cusolverDnDsyevdBufferSize, "cusolverDnDsyevd_bufferSize"},
		{&a.cusolverDnDsyevd, "cusolverDnDsyevd"},
		{&a.cusolverDnDsyevdxBufferSize, "cusolverDnDsyevdx_bufferSize"},
		{&a.cusolverDnDsyevdx, "cusolverDnDsyevdx"},
	})
}

// cString reads the NUL-terminated C string at p (owned by the library).
func cString(p uintptr) string {
	if p == 0 {
		return ""
	}
	var b []byte
	for i := uintptr(0); i < 4096; i++ {
		c := *(*byte)(unsafe.Add(unsafe.Pointer(nil), p+i)) //nolint:govet // C memory, not Go
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

// cBytes returns s as a NUL-terminated byte slice.
func cBytes(s string) []byte { return append([]byte(s), 0) }
