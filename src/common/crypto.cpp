#include "common/crypto.hpp"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <memory>

#include "common/hash.hpp"

namespace edgeloop::crypto {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

Error SslError(Errc code, const std::string& what) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  std::string msg = what;
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    msg += ": ";
    msg += buf;
  }
  return Error(code, msg);
}

BioPtr MemBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<PkeyPtr> ReadPrivateKey(const std::string& pem) {
  auto bio = MemBio(pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return SslError(Errc::kFormat, "not a PEM private key");
  return key;
}

Result<PkeyPtr> ReadPublicKey(const std::string& pem) {
  auto bio = MemBio(pem);
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return SslError(Errc::kFormat, "not a PEM public key");
  return key;
}

Result<X509Ptr> ReadCert(const std::string& pem) {
  auto bio = MemBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return SslError(Errc::kFormat, "not a PEM certificate");
  return cert;
}

Result<std::string> PrivateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr))
    return SslError(Errc::kInternal, "writing private key");
  return BioString(bio.get());
}

Result<std::string> CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return SslError(Errc::kInternal, "writing cert");
  return BioString(bio.get());
}

Status SetName(X509_NAME* name, const std::string& common_name) {
  if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                  -1, 0))
    return SslError(Errc::kInvalidArgument, "bad common name");
  return Status::Ok();
}

Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || !X509_add_ext(cert, ext.get(), -1))
    return SslError(Errc::kInternal, "adding extension " + value);
  return Status::Ok();
}

// The fields every certificate we issue shares.
Result<X509Ptr> NewCertFor(uint64_t serial, int64_t lifetime_seconds, EVP_PKEY* subject_key,
                           const std::string& common_name) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial);
  // Valid from a little before now, to tolerate small clock skew: 5 minutes, or a tenth of a
  // short lifetime (so that renew_at stays a fraction of the lifetime asked for).
  const long backdate = static_cast<long>(std::min<int64_t>(300, lifetime_seconds / 10));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -backdate);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(lifetime_seconds));
  if (!X509_set_pubkey(cert.get(), subject_key)) return SslError(Errc::kInternal, "set pubkey");
  EDGELOOP_RETURN_IF_ERROR(SetName(X509_get_subject_name(cert.get()), common_name));
  return cert;
}

Result<X509Ptr> NewCert(uint64_t serial, int days, EVP_PKEY* subject_key,
                        const std::string& common_name) {
  return NewCertFor(serial, static_cast<int64_t>(days) * 86400, subject_key, common_name);
}

// Device keys: ECDSA on P-256 or P-384, RSA of 2048 bits or more, Ed25519. Anything else is
// refused by name, so an operator sees which device sent what.
Result<std::string> CheckDeviceKey(EVP_PKEY* key) {
  const int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_RSA) {
    const int bits = EVP_PKEY_get_bits(key);
    if (bits < 2048)
      return Error(Errc::kInvalidArgument,
                   "RSA key of " + std::to_string(bits) + " bits refused: at least 2048 needed");
    return "RSA " + std::to_string(bits);
  }
  if (id == EVP_PKEY_EC) {
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) != 1)
      return SslError(Errc::kInvalidArgument, "EC key without a named curve refused");
    const std::string curve(group);
    if (curve == "prime256v1" || curve == "P-256") return std::string("EC P-256");
    if (curve == "secp384r1" || curve == "P-384") return std::string("EC P-384");
    return Error(Errc::kInvalidArgument, "EC curve " + curve + " refused: P-256 or P-384 needed");
  }
  if (id == EVP_PKEY_ED25519) return std::string("Ed25519");
  return Error(Errc::kInvalidArgument, "key type " + std::to_string(id) +
                                           " refused: EC P-256/P-384, RSA >= 2048 or Ed25519");
}

uint64_t RandomSerial() {
  uint64_t s = 0;
  unsigned char buf[8];
  if (RAND_bytes(buf, sizeof(buf)) == 1)
    for (unsigned char b : buf) s = (s << 8) | b;
  return (s >> 1) | 1;  // positive and non-zero
}

}  // namespace

Result<std::string> GenerateEd25519KeyPem() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return SslError(Errc::kInternal, "Ed25519 key generation");
  return PrivateKeyPem(key.get());
}

Result<std::string> Ed25519PublicKeyPem(const std::string& private_key_pem) {
  EDGELOOP_ASSIGN_OR_RETURN(auto key, ReadPrivateKey(private_key_pem));
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519)
    return Error(Errc::kFormat, "not an Ed25519 key");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PUBKEY(bio.get(), key.get()))
    return SslError(Errc::kInternal, "writing public key");
  return BioString(bio.get());
}

Result<std::string> Ed25519Sign(const std::string& private_key_pem, std::string_view message) {
  EDGELOOP_ASSIGN_OR_RETURN(auto key, ReadPrivateKey(private_key_pem));
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519)
    return Error(Errc::kFormat, "not an Ed25519 key");
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::string sig(64, '\0');
  size_t len = sig.size();
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1)
    return SslError(Errc::kInternal, "Ed25519 signing");
  sig.resize(len);
  return sig;
}

Status Ed25519Verify(const std::string& public_key_pem, std::string_view message,
                     std::string_view signature) {
  EDGELOOP_ASSIGN_OR_RETURN(auto key, ReadPublicKey(public_key_pem));
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519)
    return Error(Errc::kFormat, "not an Ed25519 public key");
  if (signature.size() != 64) return Error(Errc::kPermission, "signature is not 64 bytes");
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1)
    return SslError(Errc::kInternal, "Ed25519 verify init");
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(),
                            reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  if (rc != 1) return Error(Errc::kPermission, "Ed25519 signature does not verify");
  return Status::Ok();
}

Result<std::string> KeyId(const std::string& public_key_pem) {
  EDGELOOP_ASSIGN_OR_RETURN(auto key, ReadPublicKey(public_key_pem));
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key.get(), &der);
  if (n <= 0) return SslError(Errc::kInternal, "encoding public key");
  std::string id = Sha256Hex(std::string_view(reinterpret_cast<char*>(der), n));
  OPENSSL_free(der);
  return id;
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    std::abort();  // no randomness: nothing secure can continue
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string Base64Encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return Error(Errc::kFormat, "base64 length not a multiple of 4");
  std::string out(3 * text.size() / 4 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return Error(Errc::kFormat, "invalid base64");
  size_t len = static_cast<size_t>(n);
  // EVP_DecodeBlock counts padding as zero bytes; drop them.
  if (!text.empty() && text.back() == '=') --len;
  if (text.size() > 1 && text[text.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

Result<std::string> GenerateTlsKeyPem() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return SslError(Errc::kInternal, "P-256 key generation");
  return PrivateKeyPem(key.get());
}

Result<KeyAndCertificate> CreateCertificateAuthority(const std::string& common_name, int days) {
  EDGELOOP_ASSIGN_OR_RETURN(std::string key_pem, GenerateTlsKeyPem());
  EDGELOOP_ASSIGN_OR_RETURN(auto key, ReadPrivateKey(key_pem));
  EDGELOOP_ASSIGN_OR_RETURN(auto cert, NewCert(RandomSerial(), days, key.get(), common_name));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  EDGELOOP_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
  EDGELOOP_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  EDGELOOP_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  if (!X509_sign(cert.get(), key.get(), EVP_sha256())) return SslError(Errc::kInternal, "CA sign");
  EDGELOOP_ASSIGN_OR_RETURN(std::string cert_pem, CertPem(cert.get()));
  return KeyAndCertificate{key_pem, cert_pem};
}

Result<std::string> CreateCsr(const std::string& key_pem, const std::string& common_name) {
  EDGELOOP_ASSIGN_OR_RETURN(auto key, ReadPrivateKey(key_pem));
  ReqPtr req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  EDGELOOP_RETURN_IF_ERROR(SetName(X509_REQ_get_subject_name(req.get()), common_name));
  if (!X509_REQ_set_pubkey(req.get(), key.get()) ||
      !X509_REQ_sign(req.get(), key.get(), EVP_sha256()))
    return SslError(Errc::kInternal, "signing CSR");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509_REQ(bio.get(), req.get())) return SslError(Errc::kInternal, "CSR");
  return BioString(bio.get());
}

Result<std::string> SignClientCsr(const KeyAndCertificate& ca, const std::string& csr_pem,
                                  const std::string& common_name, uint64_t serial, int days) {
  return SignClientCsrFor(ca, csr_pem, common_name, serial, static_cast<int64_t>(days) * 86400);
}

Result<CsrInfo> InspectCsr(const std::string& csr_pem) {
  if (csr_pem.size() > 64 * 1024) return Error(Errc::kFormat, "CSR larger than 64 KiB");
  auto bio = MemBio(csr_pem);
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) return SslError(Errc::kFormat, "not a PEM certificate signing request");
  PkeyPtr pub(X509_REQ_get_pubkey(req.get()));
  if (!pub || X509_REQ_verify(req.get(), pub.get()) != 1)
    return SslError(Errc::kPermission, "CSR self-signature does not verify");
  CsrInfo info;
  EDGELOOP_ASSIGN_OR_RETURN(info.key_type, CheckDeviceKey(pub.get()));
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  int idx = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
  if (idx >= 0) {
    ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    info.common_name.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)),
                            static_cast<size_t>(ASN1_STRING_length(cn)));
  }
  return info;
}

Result<std::string> SignClientCsrFor(const KeyAndCertificate& ca, const std::string& csr_pem,
                                     const std::string& common_name, uint64_t serial,
                                     int64_t lifetime_seconds) {
  EDGELOOP_RETURN_IF_ERROR(InspectCsr(csr_pem));
  auto bio = MemBio(csr_pem);
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) return SslError(Errc::kFormat, "not a PEM certificate signing request");
  PkeyPtr pub(X509_REQ_get_pubkey(req.get()));
  if (!pub) return SslError(Errc::kFormat, "CSR without a public key");
  EDGELOOP_ASSIGN_OR_RETURN(auto ca_key, ReadPrivateKey(ca.key_pem));
  EDGELOOP_ASSIGN_OR_RETURN(auto ca_cert, ReadCert(ca.cert_pem));
  EDGELOOP_ASSIGN_OR_RETURN(auto cert,
                            NewCertFor(serial, lifetime_seconds, pub.get(), common_name));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get()));
  EDGELOOP_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  EDGELOOP_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature"));
  EDGELOOP_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca_cert.get(), NID_ext_key_usage, "clientAuth"));
  if (!X509_sign(cert.get(), ca_key.get(), EVP_sha256()))
    return SslError(Errc::kInternal, "signing client certificate");
  return CertPem(cert.get());
}

Result<KeyAndCertificate> IssueServerCertificate(const KeyAndCertificate& ca,
                                                 const std::vector<std::string>& dns_names,
                                                 const std::vector<std::string>& ips, int days) {
  if (dns_names.empty() && ips.empty())
    return Error(Errc::kInvalidArgument, "a server certificate needs a name or an address");
  EDGELOOP_ASSIGN_OR_RETURN(std::string key_pem, GenerateTlsKeyPem());
  EDGELOOP_ASSIGN_OR_RETURN(auto key, ReadPrivateKey(key_pem));
  EDGELOOP_ASSIGN_OR_RETURN(auto ca_key, ReadPrivateKey(ca.key_pem));
  EDGELOOP_ASSIGN_OR_RETURN(auto ca_cert, ReadCert(ca.cert_pem));
  std::string cn = dns_names.empty() ? ips.front() : dns_names.front();
  EDGELOOP_ASSIGN_OR_RETURN(auto cert, NewCert(RandomSerial(), days, key.get(), cn));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get()));
  std::string san;
  for (const auto& d : dns_names) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  for (const auto& ip : ips) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  EDGELOOP_RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert.get(), NID_subject_alt_name, san));
  EDGELOOP_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca_cert.get(), NID_ext_key_usage, "serverAuth"));
  if (!X509_sign(cert.get(), ca_key.get(), EVP_sha256()))
    return SslError(Errc::kInternal, "signing server certificate");
  EDGELOOP_ASSIGN_OR_RETURN(std::string cert_pem, CertPem(cert.get()));
  return KeyAndCertificate{key_pem, cert_pem};
}

Result<CertificateInfo> ParseCertificate(const std::string& cert_pem) {
  EDGELOOP_ASSIGN_OR_RETURN(auto cert, ReadCert(cert_pem));
  CertificateInfo info;
  X509_NAME* name = X509_get_subject_name(cert.get());
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return Error(Errc::kFormat, "certificate has no common name");
  ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  info.common_name.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)),
                          static_cast<size_t>(ASN1_STRING_length(cn)));
  ASN1_INTEGER_get_uint64(&info.serial, X509_get0_serialNumber(cert.get()));
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) == 1)
    info.not_after_unix = static_cast<int64_t>(timegm(&tm));
  struct tm before {};
  if (ASN1_TIME_to_tm(X509_get0_notBefore(cert.get()), &before) == 1)
    info.not_before_unix = static_cast<int64_t>(timegm(&before));
  return info;
}

Status VerifyIssuedBy(const std::string& cert_pem, const std::string& ca_cert_pem) {
  EDGELOOP_ASSIGN_OR_RETURN(auto cert, ReadCert(cert_pem));
  EDGELOOP_ASSIGN_OR_RETURN(auto ca, ReadCert(ca_cert_pem));
  PkeyPtr ca_key(X509_get_pubkey(ca.get()));
  if (!ca_key || X509_verify(cert.get(), ca_key.get()) != 1) {
    ERR_clear_error();
    return Error(Errc::kPermission, "certificate was not issued by this CA");
  }
  return Status::Ok();
}

}  // namespace edgeloop::crypto
