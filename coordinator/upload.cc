#include "coordinator/upload.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"

namespace medeval {
namespace {

bool IsHexDigest(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

}  // namespace

absl::Status UploadReceiver::AddManifest(const v1::UploadManifest& manifest) {
  if (manifest.files_size() == 0) return absl::InvalidArgumentError("the manifest lists no files");
  if (static_cast<size_t>(manifest.files_size()) > limits_.max_files) {
    return absl::ResourceExhaustedError(absl::StrCat("the submission lists ", manifest.files_size(),
                                                     " files; at most ", limits_.max_files,
                                                     " are accepted"));
  }
  uint64_t total = 0;
  for (const v1::ManifestEntry& e : manifest.files()) {
    if (!IsSafeRelativePath(e.path())) {
      return absl::InvalidArgumentError(absl::StrCat("unsafe file path '", e.path(), "'"));
    }
    if (e.size() > limits_.max_file_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(e.path(), ": ", e.size(),
                                                       " bytes; files of at most ",
                                                       limits_.max_file_bytes, " are accepted"));
    }
    total += e.size();  // no overflow: each term is capped far below 2^64 / max_files
    if (total > limits_.max_upload_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("submission larger than ", limits_.max_upload_bytes, " bytes"));
    }
    if (!IsHexDigest(e.sha256())) {
      return absl::InvalidArgumentError(
          absl::StrCat(e.path(), ": the manifest's SHA-256 is not 64 lower-case hex digits"));
    }
    if (!index_.emplace(e.path(), manifest_.size()).second) {
      return absl::InvalidArgumentError(absl::StrCat(e.path(), " is listed twice"));
    }
    manifest_.push_back(e);
  }
  declared_ = total;
  files_.resize(manifest_.size());
  started_.assign(manifest_.size(), false);
  for (size_t i = 0; i < manifest_.size(); ++i) files_[i].path = manifest_[i].path();
  return absl::OkStatus();
}

absl::Status UploadReceiver::StartFile(const v1::FileHeader& header) {
  if (current_ != SIZE_MAX) {
    if (absl::Status st = EndFile(); !st.ok()) return st;
  }
  auto it = index_.find(header.path());
  if (it == index_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("file '", header.path(), "' is not in the manifest"));
  }
  const size_t i = it->second;
  if (started_[i]) return absl::InvalidArgumentError(absl::StrCat(header.path(), " sent twice"));
  if (header.size() != manifest_[i].size()) {
    return absl::InvalidArgumentError(absl::StrCat(header.path(), ": header says ", header.size(),
                                                   " bytes, the manifest ", manifest_[i].size()));
  }
  started_[i] = true;
  current_ = i;
  hasher_ = std::make_unique<Sha256Hasher>();
  return absl::OkStatus();
}

absl::Status UploadReceiver::EndFile() {
  const size_t i = current_;
  current_ = SIZE_MAX;
  const v1::ManifestEntry& e = manifest_[i];
  if (files_[i].data.size() != e.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(e.path(), ": got ", files_[i].data.size(), " of ", e.size(), " bytes"));
  }
  if (hasher_->HexDigest() != e.sha256()) {
    return absl::DataLossError(
        absl::StrCat(e.path(),
                     ": its SHA-256 does not match the manifest (changed or damaged while "
                     "uploading); submit again"));
  }
  hasher_.reset();
  ++completed_;
  return absl::OkStatus();
}

absl::Status UploadReceiver::Add(v1::SubmitChunk* chunk) {
  if (chunk->has_spec()) {
    if (have_spec_) return absl::InvalidArgumentError("the submission holds two specs");
    if (!chunk->has_manifest()) {
      return absl::InvalidArgumentError(
          "the submission has no manifest of its files (a client older than the coordinator?)");
    }
    if (absl::Status st = AddManifest(chunk->manifest()); !st.ok()) return st;
    spec_ = std::move(*chunk->mutable_spec());
    have_spec_ = true;
  } else if (chunk->has_manifest()) {
    return absl::InvalidArgumentError("the manifest comes with the spec, in the first message");
  }
  if (!have_spec_) return absl::InvalidArgumentError("the first message must hold the spec");
  if (chunk->has_file()) {
    if (absl::Status st = StartFile(chunk->file()); !st.ok()) return st;
  }
  if (!chunk->data().empty()) {
    if (current_ == SIZE_MAX) return absl::InvalidArgumentError("file data before a file header");
    std::string& data = files_[current_].data;
    const v1::ManifestEntry& e = manifest_[current_];
    if (chunk->data().size() > e.size() - data.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(e.path(), ": more than the ", e.size(), " bytes the manifest declares"));
    }
    hasher_->Update(chunk->data());
    received_ += chunk->data().size();
    if (data.empty()) {
      data = std::move(*chunk->mutable_data());
    } else {
      data.append(chunk->data());
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::RunSpec> UploadReceiver::Complete(std::vector<UploadedFile>* files) {
  if (!have_spec_) return absl::InvalidArgumentError("submission without a spec");
  if (current_ != SIZE_MAX) {
    if (absl::Status st = EndFile(); !st.ok()) return st;
  }
  if (completed_ != manifest_.size()) {
    for (size_t i = 0; i < manifest_.size(); ++i) {
      if (!started_[i]) {
        return absl::InvalidArgumentError(
            absl::StrCat("the upload ended before ", manifest_[i].path(), " (", completed_, " of ",
                         manifest_.size(), " files received); nothing was created"));
      }
    }
  }
  *files = std::move(files_);
  return std::move(spec_);
}

}  // namespace medeval
