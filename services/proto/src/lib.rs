//! Generated types and gRPC stubs for the platform's versioned protobuf packages, and the
//! transport service clients call each other over.

pub mod transport;

/// `ledger.v1`: points and stored value.
pub mod ledger {
    pub mod v1 {
        tonic::include_proto!("ledger.v1");
    }
}

/// `identity.v1`: authentication, authorization and audit for services without the
/// identity store.
pub mod identity {
    pub mod v1 {
        tonic::include_proto!("identity.v1");
    }
}

/// `member.v1`: member profiles, orders, activity, erasure, segments and merges.
pub mod member {
    pub mod v1 {
        tonic::include_proto!("member.v1");

        /// Which fields are set, never their values.
        impl std::fmt::Debug for Personal {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let set = |value: &Option<String>| value.as_ref().map(|_| "[personal]");
                f.debug_struct("Personal")
                    .field("name", &set(&self.name))
                    .field("gender", &set(&self.gender))
                    .field("birthday", &set(&self.birthday))
                    .field("phone", &set(&self.phone))
                    .field("email", &set(&self.email))
                    .field("id_number", &set(&self.id_number))
                    .field("address", &set(&self.address))
                    .finish()
            }
        }

        /// Which field a lookup is by, never its value.
        impl std::fmt::Debug for FindMemberRequest {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                use find_member_request::By;
                let by = self.by.as_ref().map(|by| match by {
                    By::Phone(_) => "phone: [personal]",
                    By::Email(_) => "email: [personal]",
                    By::IdNumber(_) => "id_number: [personal]",
                });
                f.debug_struct("FindMemberRequest")
                    .field("tenant_id", &self.tenant_id)
                    .field("by", &by)
                    .finish()
            }
        }
    }
}

/// `events.v1`: the schema of the events published to partners (JSON on the wire).
/// `campaign.v1`: coupons and redemptions.
pub mod campaign {
    pub mod v1 {
        tonic::include_proto!("campaign.v1");
    }
}

pub mod events {
    pub mod v1 {
        tonic::include_proto!("events.v1");
    }
}

/// Encoded `FileDescriptorSet` of every package, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

#[cfg(test)]
mod tests {
    use super::member::v1 as pb;

    #[test]
    fn personal_data_is_not_printed_by_debug() {
        let personal = pb::Personal {
            phone: Some("13812345678".into()),
            email: Some("a@example.cn".into()),
            ..pb::Personal::default()
        };
        let lookup = pb::FindMemberRequest {
            tenant_id: "acme".into(),
            by: Some(pb::find_member_request::By::Phone("13812345678".into())),
        };
        let printed = format!("{personal:?} {lookup:?}");
        assert!(!printed.contains("1381234"), "{printed}");
        assert!(!printed.contains("example"), "{printed}");
        assert!(printed.contains("acme"), "{printed}");
    }
}
